package mfa

// SecretAAD exposes secretAAD to the tests of package mfa_test.
var SecretAAD = secretAAD
