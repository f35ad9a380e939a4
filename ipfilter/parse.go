package ipfilter

import (
	"net/netip"
	"strconv"
	"strings"
)

// Limits on allow-lists.
const (
	// MaxEntryLen is the longest entry ParsePrefix accepts, in bytes,
	// surrounding blanks included. The longest canonical IPv6 prefix
	// ("ffff:…:255.255.255.255/128") has 49.
	MaxEntryLen = 64
	// DefaultMaxEntries is the default of ParseOptions.MaxEntries.
	DefaultMaxEntries = 100_000
)

// ParseOptions relaxes or tightens the parsing of allow-list entries.
// The zero value is the strict default.
type ParseOptions struct {
	// AllowAll permits entries that match every address of a family
	// (0.0.0.0/0, ::/0). Without it they are refused with ErrMatchesAll,
	// because an allow-list that matches everything is almost always a
	// typing mistake. Note that ::/0 does not match IPv4 clients and
	// 0.0.0.0/0 does not match IPv6 clients.
	AllowAll bool
	// MaxEntries bounds the length of a list given to ParseList
	// (default DefaultMaxEntries; negative means no bound).
	MaxEntries int
}

// Adjustment records how ParsePrefix normalised an entry. It is a set
// of flags; the zero value means the entry was already canonical (up to
// spelling: "1.2.3.4/32" is written "1.2.3.4", IPv6 in RFC 5952 form).
type Adjustment uint8

const (
	// Masked: the entry had host bits set below its mask
	// (203.0.113.77/24), which were cleared (203.0.113.0/24). The
	// administrator may have meant a single address; show the warning.
	Masked Adjustment = 1 << iota
	// Unmapped: the entry was written as an IPv4-mapped IPv6 address or
	// prefix (::ffff:203.0.113.0/120) and was rewritten in IPv4 form
	// (203.0.113.0/24), which is what it matches.
	Unmapped
	// Duplicate: ParseList dropped the entry because an earlier entry
	// has the same canonical form.
	Duplicate
)

// String lists the flags of a, e.g. "masked, unmapped".
func (a Adjustment) String() string {
	var parts []string
	if a&Masked != 0 {
		parts = append(parts, "host bits cleared")
	}
	if a&Unmapped != 0 {
		parts = append(parts, "IPv4-mapped form rewritten as IPv4")
	}
	if a&Duplicate != 0 {
		parts = append(parts, "duplicate dropped")
	}
	if len(parts) == 0 {
		return "none"
	}
	return strings.Join(parts, ", ")
}

// Warning tells the administrator that ParseList changed an entry.
type Warning struct {
	Index     int        // position of the entry in the list, from 0 (String counts from 1)
	Entry     string     // the entry as given, without surrounding blanks
	Canonical string     // what it became
	Adjusted  Adjustment // how
}

func (w Warning) String() string {
	return "entry " + itoa(w.Index+1) + " " + echo(w.Entry) + " read as " + w.Canonical + ": " + w.Adjusted.String()
}

func itoa(i int) string { return strconv.Itoa(i) }

// mappedRange is ::ffff:0.0.0.0, the start of the IPv4-mapped range.
var mappedRange = netip.AddrFrom16([16]byte{10: 0xff, 11: 0xff})

// ParsePrefix parses one allow-list entry strictly and returns it in
// canonical form:
//
//   - An entry is an IPv4 or IPv6 address (meaning /32 or /128) or a CIDR
//     prefix. Blanks (spaces, tabs) around it are trimmed; nothing else
//     is: no brackets, ports, quotes, comments or wildcards.
//   - IPv4 must be four decimal octets without leading zeros: 010.1.2.3,
//     0x7f.0.0.1, 127.1 and 1.2.3.4. are refused, as is a mask with a
//     leading zero (10.0.0.0/08) — all ErrSyntax.
//   - A zone (fe80::1%eth0) is refused with ErrZone.
//   - Host bits below the mask are cleared and reported (Masked).
//   - An IPv4-mapped entry (::ffff:203.0.113.0/120) is rewritten in IPv4
//     form (203.0.113.0/24, Unmapped). A shorter IPv6 prefix covering
//     the mapped range (::/64) is refused with ErrMappedRange.
//   - 0.0.0.0/0 and ::/0 are refused with ErrMatchesAll unless
//     opt.AllowAll.
//   - The unspecified addresses 0.0.0.0 and :: (/32, /128, or
//     ::ffff:0.0.0.0) are refused with ErrUnspecified: no client has
//     them (Resolver refuses them), so the entry would match nothing.
//     A prefix that starts there (0.0.0.0/8) is accepted.
//
// NAT64 (64:ff9b::/96), 6to4 (2002::/16) and IPv4-compatible (::a.b.c.d)
// entries are IPv6 prefixes like any other: they match IPv6 clients only,
// never the IPv4 addresses embedded in them.
//
// Errors are *ParseError with Index -1. opt.MaxEntries is ignored.
func ParsePrefix(s string, opt ParseOptions) (netip.Prefix, Adjustment, error) {
	return parsePrefix(s, -1, rules{allowAll: opt.AllowAll})
}

// rules are what parsePrefix accepts beyond the strict default.
type rules struct {
	// allowAll: 0.0.0.0/0 and ::/0 (ParseOptions.AllowAll).
	allowAll bool
	// allowUnspecified: 0.0.0.0 and :: too, for a list read back from
	// the Store (Compile; one written before ErrUnspecified existed must
	// not make its tenant's lists corrupt, which would deny every request
	// of the tenant) and for trusted proxies (NewResolver, where such a
	// prefix is as harmless as it is useless, and always was accepted).
	allowUnspecified bool
}

func parsePrefix(raw string, index int, r rules) (netip.Prefix, Adjustment, error) {
	fail := func(err error, detail string) (netip.Prefix, Adjustment, error) {
		e := raw
		if len(e) > MaxEntryLen {
			e = e[:MaxEntryLen]
		}
		return netip.Prefix{}, 0, &ParseError{Index: index, Entry: e, Err: err, Detail: detail}
	}
	if len(raw) > MaxEntryLen {
		return fail(ErrSyntax, "longer than "+itoa(MaxEntryLen)+" bytes")
	}
	s := strings.Trim(raw, " \t")
	if s == "" {
		return fail(ErrSyntax, "empty")
	}
	if strings.IndexByte(s, '%') >= 0 {
		return fail(ErrZone, "")
	}
	var p netip.Prefix
	if addr, bits, ok := strings.Cut(s, "/"); ok {
		var err error
		if p, err = netip.ParsePrefix(s); err != nil {
			return fail(ErrSyntax, syntaxDetail(addr, bits, err))
		}
	} else {
		a, err := netip.ParseAddr(s)
		if err != nil {
			return fail(ErrSyntax, syntaxDetail(s, "", err))
		}
		p = netip.PrefixFrom(a, a.BitLen())
	}
	p, adj, err := normalize(p, r)
	if err != nil {
		return fail(err, "")
	}
	return p, adj, nil
}

// syntaxDetail turns a netip error into a short reason that does not
// repeat the entry.
func syntaxDetail(addr, bits string, err error) string {
	msg := err.Error()
	switch {
	case strings.Contains(msg, "leading zero"):
		return "leading zero"
	case strings.Contains(msg, "bad bits"), strings.Contains(msg, "prefix length"):
		return "bad mask " + echo(bits)
	}
	if _, err := netip.ParseAddr(addr); err != nil {
		return "bad address"
	}
	return ""
}

// normalize applies the allow-list rules to a parsed prefix: unmap,
// mask, refuse /0 (unless r.allowAll), IPv6 prefixes shorter than /96
// that cover the mapped range, and unspecified addresses (unless
// r.allowUnspecified). (A netip.Prefix never holds a zone.)
func normalize(p netip.Prefix, r rules) (netip.Prefix, Adjustment, error) {
	if !p.IsValid() {
		return netip.Prefix{}, 0, ErrSyntax
	}
	var adj Adjustment
	a, bits := p.Addr(), p.Bits()
	if a.Is4In6() && bits >= 96 {
		a, bits, adj = a.Unmap(), bits-96, Unmapped
	}
	m := netip.PrefixFrom(a, bits).Masked()
	if m.Addr() != a {
		adj |= Masked
	}
	if m.Addr().Is6() && bits > 0 && bits < 96 && m.Contains(mappedRange) {
		return netip.Prefix{}, 0, ErrMappedRange
	}
	return checkAll(m, adj, r)
}

// checkAll refuses an entry that matches every address (ErrMatchesAll)
// or none (ErrUnspecified), as r says.
func checkAll(p netip.Prefix, adj Adjustment, r rules) (netip.Prefix, Adjustment, error) {
	switch {
	case p.Bits() == 0 && !r.allowAll:
		return netip.Prefix{}, 0, ErrMatchesAll
	case p.IsSingleIP() && p.Addr().IsUnspecified() && !r.allowUnspecified:
		return netip.Prefix{}, 0, ErrUnspecified
	}
	return p, adj, nil
}

// Canonical returns the canonical text of an allow-list prefix: the bare
// address for a single address (/32, /128), else the CIDR form.
func Canonical(p netip.Prefix) string {
	if p.IsSingleIP() {
		return p.Addr().String()
	}
	return p.String()
}

// SplitList splits the text of an allow-list as an administrator types
// it (one entry per line, or separated by commas, spaces or tabs) into
// entries for ParseList, dropping empty ones. Only the separators are
// interpreted; each piece is checked by ParseList.
func SplitList(text string) []string {
	return strings.FieldsFunc(text, func(r rune) bool {
		switch r {
		case ',', ' ', '\t', '\n', '\r', '\v', '\f':
			return true
		}
		return false
	})
}

// ParseList parses every entry of an allow-list with ParsePrefix and
// compiles them into a Set. It stops at the first bad entry and returns
// its *ParseError (Index is the entry's position); a list longer than
// opt.MaxEntries fails with ErrTooManyEntries before any entry is read.
// Entries whose canonical form repeats an earlier one are dropped. Every
// entry that was changed (Masked, Unmapped, Duplicate) gets a Warning,
// which the caller should show to the administrator.
//
// An empty list gives an empty Set, which restricts nothing (see Set).
// Set.Entries returns the canonical entries to store.
func ParseList(entries []string, opt ParseOptions) (*Set, []Warning, error) {
	return parseList(entries, opt, false)
}

// parseList is ParseList; allowUnspecified lets unspecified addresses
// through (see rules).
func parseList(entries []string, opt ParseOptions, allowUnspecified bool) (*Set, []Warning, error) {
	limit := opt.MaxEntries
	if limit == 0 {
		limit = DefaultMaxEntries
	}
	if limit > 0 && len(entries) > limit {
		return nil, nil, tooMany(len(entries), limit)
	}
	prefixes := make([]netip.Prefix, 0, len(entries))
	seen := make(map[netip.Prefix]struct{}, len(entries))
	var warnings []Warning
	for i, e := range entries {
		p, adj, err := parsePrefix(e, i, rules{allowAll: opt.AllowAll, allowUnspecified: allowUnspecified})
		if err != nil {
			return nil, nil, err
		}
		if _, dup := seen[p]; dup {
			adj |= Duplicate
		} else {
			seen[p] = struct{}{}
			prefixes = append(prefixes, p)
		}
		if adj != 0 {
			warnings = append(warnings, Warning{Index: i, Entry: strings.Trim(e, " \t"), Canonical: Canonical(p), Adjusted: adj})
		}
	}
	return compile(prefixes), warnings, nil
}
