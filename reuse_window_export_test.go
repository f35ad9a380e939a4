package guard

// ReuseSettleWait is reuseSettleWait, for the tests of package guard_test.
var ReuseSettleWait = reuseSettleWait
