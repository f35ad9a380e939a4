package sso

import (
	"encoding/base64"
	"fmt"
	"net/url"
	"strings"
	"unicode/utf8"

	"github.com/beevik/etree"
)

// MaxReturnToBytes bounds a return path.
const MaxReturnToBytes = 2048

// SafeRedirect reports whether target is a path on this site that is safe
// to redirect to: it starts with a single '/' (not "//", not "/\"), has no
// backslash, no ASCII control character or space (browsers drop tabs and
// newlines, turning "/\t/evil.test" into "//evil.test"), is valid UTF-8
// of at most MaxReturnToBytes, parses as a URL reference without scheme,
// host or user info, its decoded path does not start with "//" or "/\"
// either, and has no dot segment ("." or "..", "%2e" included): a browser
// resolves "/.//evil.test" to the path "//evil.test", which a host that
// writes the Location header itself, or a later redirect, may take for
// another site. Query and fragment are allowed.
func SafeRedirect(target string) bool {
	if len(target) == 0 || len(target) > MaxReturnToBytes || target[0] != '/' || !utf8.ValidString(target) {
		return false
	}
	if len(target) > 1 && (target[1] == '/' || target[1] == '\\') {
		return false
	}
	for _, r := range target {
		if r <= ' ' || r == '\\' || r == 0x7f || (r >= 0x80 && r < 0xa0) || r == '\u2028' || r == '\u2029' {
			return false
		}
	}
	u, err := url.Parse(target)
	if err != nil || u.Scheme != "" || u.Host != "" || u.User != nil || u.Opaque != "" {
		return false
	}
	// Nor may the decoded path start with "//" or "/\": a browser does
	// not decode "/%2F/evil.test", but some routers and frameworks do.
	if p := u.Path; len(p) > 1 && (p[1] == '/' || p[1] == '\\') {
		return false
	}
	for seg := range strings.SplitSeq(u.Path, "/") {
		if seg == "." || seg == ".." {
			return false
		}
	}
	return true
}

// postForm encodes el as the SAMLRequest or SAMLResponse of an HTTP-POST
// binding form to action.
func postForm(action string, el *etree.Element, relay, field string) (*PostForm, error) {
	doc := etree.NewDocument()
	doc.SetRoot(el)
	b, err := doc.WriteToBytes()
	if err != nil {
		return nil, fmt.Errorf("sso: encode %s: %w", field, err)
	}
	return &PostForm{Action: action, SAMLRequest: base64.StdEncoding.EncodeToString(b), RelayState: relay}, nil
}
