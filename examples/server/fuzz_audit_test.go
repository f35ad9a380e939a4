package main

import (
	"encoding/pem"
	"testing"
)

// FUZZ-2: splitPEM is documented to report false "if s holds anything
// else besides white space" than PEM blocks, but pem.Decode skips a
// malformed block (here a certificate whose paste was damaged) to the
// next good one, so the SSO page accepts two pasted metadata signing
// certificates, keeps one, and says nothing about the other.
func TestAuditFuzz_FUZZ2_SplitPEMDropsMalformedBlock(t *testing.T) {
	good := string(pem.EncodeToMemory(&pem.Block{Type: "CERTIFICATE", Bytes: []byte("DER")}))
	damaged := "-----BEGIN CERTIFICATE-----\nMIIB!!truncated\n-----END CERTIFICATE-----\n"
	out, ok := splitPEM(damaged + good)
	if ok {
		t.Fatalf("splitPEM(damaged block + good block) = %d block(s), true; want false: the damaged block is dropped silently", len(out))
	}
}
