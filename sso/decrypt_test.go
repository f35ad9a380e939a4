package sso

import (
	"os"
	"testing"

	"github.com/beevik/etree"
)

// TestDecryptLikeCrewjam checks decryptAssertion against crewjam's own
// decryption, on EncryptedAssertions whose content key is placed in each
// of the ways crewjam's decryptWithKeys handles: in the EncryptedData's
// KeyInfo, beside the EncryptedData, behind decoys (one wrapped to another
// key, one wrapped to the SP's key but holding another content key), past
// the fourth EncryptedKey (not tried), or past it but named by Recipient
// (tried first). The Response is signed and the assertion is not, so
// crewjam's verdict depends on the decryption alone; both must agree.
func TestDecryptLikeCrewjam(t *testing.T) {
	k := loadKeys(t)
	e := newEnv(t, nil)
	comp, err := e.p.connection(t.Context(), tenant)
	if err != nil {
		t.Fatal(err)
	}
	plain := serialize(spec{}.assertion(k))
	decoy := func(to keyPair) *etree.Element {
		other := k
		other.sp = to
		return portable(encryptAssertion(other, plain, nil).FindElement(".//EncryptedKey").Copy())
	}
	decoys := func(n int) []*etree.Element {
		var d []*etree.Element
		for i := range n {
			if i%2 == 0 {
				d = append(d, decoy(k.attacker))
			} else {
				d = append(d, decoy(k.sp))
			}
		}
		return d
	}
	// edit changes the EncryptedAssertion ea, whose EncryptedData is data
	// and whose EncryptedKey, in data's KeyInfo, is key.
	for _, tc := range []struct {
		name string
		ok   bool
		edit func(ea, data, key *etree.Element)
	}{
		{"in KeyInfo", true, func(ea, data, key *etree.Element) {}},
		{"beside EncryptedData", true, func(ea, data, key *etree.Element) {
			key.Parent().RemoveChild(key)
			ea.AddChild(portable(key))
		}},
		{"behind two decoys", true, func(ea, data, key *etree.Element) {
			for _, d := range decoys(2) {
				key.Parent().InsertChildAt(key.Index(), d)
			}
		}},
		{"beside, behind decoys in KeyInfo", true, func(ea, data, key *etree.Element) {
			ki := key.Parent()
			ki.RemoveChild(key)
			ea.AddChild(portable(key))
			for _, d := range decoys(2) {
				ki.AddChild(d)
			}
		}},
		{"fifth", false, func(ea, data, key *etree.Element) {
			for _, d := range decoys(4) {
				key.Parent().InsertChildAt(key.Index(), d)
			}
		}},
		{"fifth, named by Recipient", true, func(ea, data, key *etree.Element) {
			for _, d := range decoys(4) {
				key.Parent().InsertChildAt(key.Index(), d)
			}
			key.CreateAttr("Recipient", spEntityID)
		}},
		{"fifth, another Recipient named", false, func(ea, data, key *etree.Element) {
			for _, d := range decoys(4) {
				d.CreateAttr("Recipient", spEntityID)
				key.Parent().InsertChildAt(key.Index(), d)
			}
		}},
		{"two EncryptedData", false, func(ea, data, key *etree.Element) {
			ea.AddChild(data.Copy())
		}},
		{"no EncryptedData", false, func(ea, data, key *etree.Element) {
			ea.RemoveChild(data)
		}},
	} {
		t.Run(tc.name, func(t *testing.T) {
			ea := encryptAssertion(k, plain, nil)
			data := ea.SelectElement("EncryptedData")
			tc.edit(ea, data, data.FindElement("./KeyInfo/EncryptedKey"))
			got, ourErr := decryptAssertion(ea, &comp.sp)
			if ourErr == nil && string(got) != string(plain) {
				t.Errorf("decrypted %q, want %q", got, plain)
			}
			doc := serialize(spec{signResponse: true}.response(k, ea))
			_, crewjamErr := comp.spAt(e.clock.Now()).ParseXMLResponse(doc, []string{requestID}, comp.acsURL)
			if (ourErr == nil) != tc.ok || (crewjamErr == nil) != tc.ok {
				t.Errorf("decryptAssertion: %v; crewjam: %v; want success %v", ourErr, crewjamErr, tc.ok)
			}
		})
	}
}

// portable declares on an EncryptedKey the ds prefix it uses, declared on
// the KeyInfo it comes from, so that it can be moved out of it.
func portable(key *etree.Element) *etree.Element {
	key.CreateAttr("xmlns:ds", nsDSig)
	return key
}

// BenchmarkPrescan measures prescan on the golden baselines: on
// valid_encrypted it includes the second decryption (RSA-OAEP and
// AES-GCM) and the plaintext checks that every encrypted response now
// costs, besides crewjam's own decryption.
//
//	go test ./sso -run '^$' -bench BenchmarkPrescan -count 5
func BenchmarkPrescan(b *testing.B) {
	e := newEnv(b, nil)
	comp, err := e.p.connection(b.Context(), tenant)
	if err != nil {
		b.Fatal(err)
	}
	for _, name := range []string{"valid", "valid_encrypted"} {
		doc, err := os.ReadFile(goldenPath(name))
		if err != nil {
			b.Fatal(err)
		}
		b.Run(name, func(b *testing.B) {
			b.ReportAllocs()
			for b.Loop() {
				if _, rej := prescan(doc, comp); rej != nil {
					b.Fatal(rej)
				}
			}
		})
	}
}
