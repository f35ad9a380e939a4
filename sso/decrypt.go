package sso

import (
	"errors"
	"fmt"

	"github.com/beevik/etree"
	"github.com/crewjam/saml"
	"github.com/crewjam/saml/xmlenc"
)

const nsXMLEnc = "http://www.w3.org/2001/04/xmlenc#"

// maxEncryptedKeys is the most xenc:EncryptedKey elements tried, as in
// crewjam (maxEncryptedKeyCandidates): each costs a private-key operation.
const maxEncryptedKeys = 4

// decryptAssertion returns the plaintext of ea, an EncryptedAssertion,
// decrypted as sp, crewjam's ServiceProvider, decrypts it in
// ParseXMLResponse, so that prescan checks the bytes crewjam then reads.
// crewjam does not export that code (decryptElement, decryptWithKeys,
// encryptedKeyCandidates and decryptWithKey in github.com/crewjam/saml
// v0.6.3); this follows it step for step, and must be kept in step when
// crewjam is upgraded (TestDecryptLikeCrewjam):
//
//   - the keys are sp.EncryptionKey, or sp.Key if it is nil, then
//     sp.DecryptionKeys, in that order;
//   - the one xenc:EncryptedData child of ea;
//   - the xenc:EncryptedKey elements beside it and in its KeyInfo, those
//     whose Recipient is sp's entity ID first, then the others in document
//     order, at most four; none: the keys are used on the EncryptedData;
//   - for each EncryptedKey, each key; the first plaintext wins.
//
// crewjam then checks the plaintext with its round-trip validator and
// parses it; prescan does its own checks instead (decrypted).
func decryptAssertion(ea *etree.Element, sp *saml.ServiceProvider) ([]byte, error) {
	var keys []any
	if sp.EncryptionKey != nil {
		keys = append(keys, sp.EncryptionKey)
	} else {
		keys = append(keys, sp.Key)
	}
	for _, k := range sp.DecryptionKeys {
		keys = append(keys, k)
	}
	var data *etree.Element
	for _, c := range ea.ChildElements() {
		if c.Tag != "EncryptedData" || c.NamespaceURI() != nsXMLEnc {
			continue
		}
		if data != nil {
			return nil, errors.New("more than one EncryptedData")
		}
		data = c
	}
	if data == nil {
		return nil, errors.New("no EncryptedData")
	}

	recipient := sp.EntityID
	if recipient == "" {
		recipient = sp.MetadataURL.String()
	}
	var matching, others []*etree.Element
	for _, k := range append(ea.FindElements("./EncryptedKey"), data.FindElements("./KeyInfo/EncryptedKey")...) {
		if recipient != "" && k.SelectAttrValue("Recipient", "") == recipient {
			matching = append(matching, k)
		} else {
			others = append(others, k)
		}
	}
	candidates := append(matching, others...)
	if len(candidates) > maxEncryptedKeys {
		candidates = candidates[:maxEncryptedKeys]
	}
	if len(candidates) == 0 {
		candidates = []*etree.Element{nil}
	}
	var first error
	for _, ek := range candidates {
		for _, k := range keys {
			plain, err := decryptWith(k, ek, data)
			if err == nil {
				return plain, nil
			}
			if first == nil {
				first = err
			}
		}
	}
	return nil, fmt.Errorf("no key decrypts it: %w", first)
}

// decryptWith decrypts data with key, or, if ek is not nil, with the
// content key that ek holds wrapped with key.
func decryptWith(key any, ek, data *etree.Element) ([]byte, error) {
	if ek == nil {
		return xmlenc.Decrypt(key, data)
	}
	contentKey, err := xmlenc.Decrypt(key, ek)
	if err != nil {
		return nil, err
	}
	// The block ciphers unwrap an EncryptedKey in KeyInfo themselves:
	// hand them the EncryptedData without it, now that the key is known.
	if data.FindElement("./KeyInfo/EncryptedKey") != nil {
		data = data.Copy()
		for _, el := range data.FindElements("./KeyInfo/EncryptedKey") {
			el.Parent().RemoveChild(el)
		}
	}
	return xmlenc.Decrypt(contentKey, data)
}
