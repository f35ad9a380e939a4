package mfa

// SecretAAD exposes secretAAD to the tests of package mfa_test.
var SecretAAD = secretAAD

// CodeTxn exposes codeTxn to the tests of package mfa_test.
var CodeTxn = codeTxn
