package ipfilter

import (
	"net/netip"
	"strings"
)

// fwdElem is the for= parameter of one RFC 7239 forwarded-element.
type fwdElem struct {
	value string // raw: token or quoted-string, quotes included
	count int    // how many for= parameters the element has
}

// fwdLine holds the for= values of the last MaxHops elements of one
// Forwarded line, in a ring, so that parsing allocates nothing.
type fwdLine struct {
	ring [MaxHops]fwdElem
	n    int // elements seen in the line
}

func (l *fwdLine) at(i int) fwdElem { return l.ring[i%MaxHops] }

// parse reads one Forwarded header line:
//
//	Forwarded         = 1#forwarded-element
//	forwarded-element = [ forwarded-pair ] *( ";" [ forwarded-pair ] )
//	forwarded-pair    = token "=" value
//	value             = token / quoted-string
//
// with optional blanks around elements and pairs. Unquoted values are
// read leniently (up to the next ';', ',' or blank), since some proxies
// write "for=[2001:db8::1]:80" without the quotes RFC 7239 requires;
// parseNode then validates them. It reports whether the line is well
// formed.
func (l *fwdLine) parse(s string) bool {
	*l = fwdLine{}
	cur := fwdElem{}
	i := 0
	skip := func() {
		for i < len(s) && (s[i] == ' ' || s[i] == '\t') {
			i++
		}
	}
	for {
		skip()
		// One pair, or nothing (empty pair or element).
		if i < len(s) && s[i] != ';' && s[i] != ',' {
			start := i
			for i < len(s) && isTchar(s[i]) {
				i++
			}
			name := s[start:i]
			if name == "" || i >= len(s) || s[i] != '=' {
				return false
			}
			i++
			start = i
			if i < len(s) && s[i] == '"' {
				i++
				for i < len(s) && s[i] != '"' {
					if s[i] == '\\' {
						i++
					}
					i++
				}
				if i >= len(s) {
					return false // unterminated quoted-string
				}
				i++
			} else {
				for i < len(s) && s[i] != ';' && s[i] != ',' && s[i] != ' ' && s[i] != '\t' && s[i] != '"' {
					i++
				}
			}
			value := s[start:i]
			if value == "" {
				return false
			}
			if strings.EqualFold(name, "for") {
				cur.value = value
				cur.count++
			}
			skip()
		}
		if i >= len(s) || s[i] == ',' {
			l.ring[l.n%MaxHops] = cur
			l.n++
			cur = fwdElem{}
			if i >= len(s) {
				return true
			}
		} else if s[i] != ';' {
			return false
		}
		i++
	}
}

// isTchar reports whether c may appear in an RFC 7230 token.
func isTchar(c byte) bool {
	switch {
	case 'a' <= c && c <= 'z', 'A' <= c && c <= 'Z', '0' <= c && c <= '9':
		return true
	}
	return strings.IndexByte("!#$%&'*+-.^_`|~", c) >= 0
}

func (rs *Resolver) walkForwarded(lines []string) (netip.Addr, error) {
	const source = "Forwarded"
	w := walker{rs: rs}
	var l fwdLine
	for i := len(lines) - 1; i >= 0; i-- {
		if !l.parse(lines[i]) {
			return netip.Addr{}, resolveErr(source, lines[i], "malformed header")
		}
		for j := l.n - 1; j >= 0 && j >= l.n-MaxHops; j-- {
			e := l.at(j)
			switch e.count {
			case 0:
				return netip.Addr{}, resolveErr(source, "", "element without for=")
			case 1:
			default:
				return netip.Addr{}, resolveErr(source, e.value, "element with several for=")
			}
			if a, done, err := w.step(source, e.value); done {
				return a, err
			}
		}
	}
	return netip.Addr{}, w.end(source)
}
