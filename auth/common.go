package auth

import (
	_ "embed"
	"strings"
	"sync"
	"unicode/utf8"
)

// commonList is the embedded list of common passwords, one per line,
// lower-cased and without duplicates, most common first: 11,814 entries.
//
// Source: the first 11,924 lines of
// Passwords/Common-Credentials/10-million-password-list-top-100000.txt in
// Daniel Miessler's SecLists, https://github.com/danielmiessler/SecLists
// (its first 10,000 lines are the file 10-million-password-list-top-10000.txt
// of the same folder), lower-cased and deduplicated. SecLists is released
// under the MIT License, whose notice follows:
//
//	MIT License
//
//	Copyright (c) 2025 Daniel Miessler
//
//	Permission is hereby granted, free of charge, to any person obtaining a copy
//	of this software and associated documentation files (the "Software"), to deal
//	in the Software without restriction, including without limitation the rights
//	to use, copy, modify, merge, publish, distribute, sublicense, and/or sell
//	copies of the Software, and to permit persons to whom the Software is
//	furnished to do so, subject to the following conditions:
//
//	The above copyright notice and this permission notice shall be included in all
//	copies or substantial portions of the Software.
//
//	THE SOFTWARE IS PROVIDED "AS IS", WITHOUT WARRANTY OF ANY KIND, EXPRESS OR
//	IMPLIED, INCLUDING BUT NOT LIMITED TO THE WARRANTIES OF MERCHANTABILITY,
//	FITNESS FOR A PARTICULAR PURPOSE AND NONINFRINGEMENT. IN NO EVENT SHALL THE
//	AUTHORS OR COPYRIGHT HOLDERS BE LIABLE FOR ANY CLAIM, DAMAGES OR OTHER
//	LIABILITY, WHETHER IN AN ACTION OF CONTRACT, TORT OR OTHERWISE, ARISING FROM,
//	OUT OF OR IN CONNECTION WITH THE SOFTWARE OR THE USE OR OTHER DEALINGS IN THE
//	SOFTWARE.
//
//go:embed common-passwords.txt
var commonList string

// commonSet is the list as a set, built on first use.
var commonSet = sync.OnceValue(func() map[string]struct{} {
	m := make(map[string]struct{}, 12000)
	for line := range strings.SplitSeq(commonList, "\n") {
		if line != "" {
			m[line] = struct{}{}
		}
	}
	return m
})

// minCommonStem is the shortest list entry that still makes a password
// common when only digits and punctuation follow it ("password1234567").
const minCommonStem = 4

// IsCommon reports whether password is too common to be used. That is
// the case, ignoring letter case, when
//
//   - it is on the embedded list of common passwords (see commonList), or
//   - it is an entry of that list of at least 4 characters followed only
//     by digits and ASCII punctuation ("password1234567", "dragon2026!"),
//   - or it repeats a single character ("aaaaaaaaaaaa").
//
// The empty string is common.
func IsCommon(password string) bool {
	if password == "" {
		return true
	}
	p := strings.ToLower(password)
	set := commonSet()
	if _, ok := set[p]; ok {
		return true
	}
	// Every way of cutting a tail of digits and punctuation off p: the
	// entry itself may end in digits ("123456" + "78!", "blink182" + "!").
	for i := len(p) - 1; i >= minCommonStem && isDigitOrPunct(rune(p[i])); i-- {
		if _, ok := set[p[:i]]; ok {
			return true
		}
	}
	return repeatsOneRune(p)
}

func isDigitOrPunct(r rune) bool {
	return '0' <= r && r <= '9' || r < utf8.RuneSelf && strings.ContainsRune("!\"#$%&'()*+,-./:;<=>?@[\\]^_`{|}~", r)
}

// repeatsOneRune reports whether s consists of one rune repeated.
func repeatsOneRune(s string) bool {
	first, n := utf8.DecodeRuneInString(s)
	for _, r := range s[n:] {
		if r != first {
			return false
		}
	}
	return true
}
