// Command vulngate is .ci/run's gate on govulncheck (SECURITY-CHECKLIST
// RL-7, SAML-51). It reads govulncheck's JSON output (-format json) on its
// standard input and fails when the code calls a vulnerable function of a
// module it depends on, unless the advisory is in the allow file with the
// reason it does not apply.
//
// Only findings whose trace reaches a function are counted: govulncheck
// also reports vulnerable modules and packages that are merely required or
// imported, which no call reaches. A finding in the standard library is
// reported, not failed: the library is built by its host, with the host's
// Go, and the fix is a patched Go release (the report names the lowest
// that has every fix), not a change here.
//
// Usage:
//
//	govulncheck -db file:///tmp/vulndb -format json ./... | vulngate -allow .ci/vuln-allow
//
// The allow file has one advisory per line, its ID then the reason
// (required); blank lines and lines starting with # are ignored. An
// allowed advisory that is no longer reported is named, so that the entry
// can go.
//
// Exit status: 0 when nothing fails, 1 when a finding fails, 2 when the
// input or the allow file cannot be read.
package main

import (
	"bufio"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"slices"
	"strconv"
	"strings"
)

func main() {
	allowPath := flag.String("allow", "", "file of allowed advisories: `ID reason` per line")
	flag.Parse()
	allow := map[string]string{}
	if *allowPath != "" {
		f, err := os.Open(*allowPath)
		if err != nil {
			fmt.Fprintln(os.Stderr, "vulngate:", err)
			os.Exit(2)
		}
		allow, err = parseAllow(f)
		f.Close()
		if err != nil {
			fmt.Fprintf(os.Stderr, "vulngate: %s: %v\n", *allowPath, err)
			os.Exit(2)
		}
	}
	rep, err := read(os.Stdin)
	if err != nil {
		fmt.Fprintln(os.Stderr, "vulngate:", err)
		os.Exit(2)
	}
	if !rep.write(os.Stdout, allow) {
		os.Exit(1)
	}
}

// message is one JSON value of govulncheck's output stream; exactly one
// field is set.
type message struct {
	Config *struct {
		GoVersion string `json:"go_version"`
		DB        string `json:"db"`
		ScanLevel string `json:"scan_level"`
	} `json:"config"`
	OSV *struct {
		ID      string `json:"id"`
		Summary string `json:"summary"`
	} `json:"osv"`
	Finding *struct {
		OSV          string  `json:"osv"`
		FixedVersion string  `json:"fixed_version"`
		Trace        []frame `json:"trace"`
	} `json:"finding"`
}

// frame is one step of a finding's trace: the first is the vulnerable
// symbol, the last the code's own call that leads to it.
type frame struct {
	Module   string `json:"module"`
	Version  string `json:"version"`
	Package  string `json:"package"`
	Function string `json:"function"`
	Receiver string `json:"receiver"`
	Position *struct {
		Filename string `json:"filename"`
		Line     int    `json:"line"`
	} `json:"position"`
}

// vuln is one advisory the code reaches.
type vuln struct {
	ID, Summary     string
	Module, Version string
	Fixed           string // "" when no release fixes it
	CalledFrom      string // file:line of one call in the code, if known
}

// report is what the output says.
type report struct {
	GoVersion, DB string
	Called        []vuln // ordered by ID
}

const stdlib = "stdlib"

// read parses govulncheck's JSON stream.
func read(r io.Reader) (report, error) {
	var rep report
	summaries := map[string]string{}
	byID := map[string]*vuln{}
	seenConfig := false
	dec := json.NewDecoder(r)
	for {
		var m message
		err := dec.Decode(&m)
		if errors.Is(err, io.EOF) {
			break
		}
		if err != nil {
			return report{}, fmt.Errorf("reading govulncheck's JSON: %w", err)
		}
		switch {
		case m.Config != nil:
			seenConfig = true
			rep.GoVersion, rep.DB = m.Config.GoVersion, m.Config.DB
			if m.Config.ScanLevel != "" && m.Config.ScanLevel != "symbol" {
				return report{}, fmt.Errorf("govulncheck scanned at level %q: only a symbol scan tells which findings are called", m.Config.ScanLevel)
			}
		case m.OSV != nil:
			summaries[m.OSV.ID] = m.OSV.Summary
		case m.Finding != nil:
			f := m.Finding
			if len(f.Trace) == 0 || f.Trace[0].Function == "" {
				continue // required or imported, not called
			}
			if byID[f.OSV] != nil {
				continue
			}
			v := &vuln{ID: f.OSV, Module: f.Trace[0].Module, Version: f.Trace[0].Version, Fixed: f.FixedVersion}
			if last := f.Trace[len(f.Trace)-1]; last.Position != nil {
				v.CalledFrom = last.Position.Filename + ":" + strconv.Itoa(last.Position.Line)
			}
			byID[f.OSV] = v
		}
	}
	if !seenConfig {
		return report{}, errors.New("no govulncheck output (its config message is missing)")
	}
	for id, v := range byID {
		v.Summary = summaries[id]
		rep.Called = append(rep.Called, *v)
	}
	slices.SortFunc(rep.Called, func(a, b vuln) int { return strings.Compare(a.ID, b.ID) })
	return rep, nil
}

// parseAllow reads the allow file.
func parseAllow(r io.Reader) (map[string]string, error) {
	allow := map[string]string{}
	sc := bufio.NewScanner(r)
	for n := 1; sc.Scan(); n++ {
		line := strings.TrimSpace(sc.Text())
		if line == "" || strings.HasPrefix(line, "#") {
			continue
		}
		id, reason, _ := strings.Cut(line, " ")
		reason = strings.TrimSpace(reason)
		switch {
		case !strings.HasPrefix(id, "GO-"):
			return nil, fmt.Errorf("line %d: %q is not an advisory ID (GO-…)", n, id)
		case reason == "":
			return nil, fmt.Errorf("line %d: %s has no reason", n, id)
		case allow[id] != "":
			return nil, fmt.Errorf("line %d: %s is listed twice", n, id)
		}
		allow[id] = reason
	}
	return allow, sc.Err()
}

// write prints the report and says whether it passes: no finding outside
// the standard library that allow does not name.
func (rep report) write(w io.Writer, allow map[string]string) bool {
	pass := true
	var std []vuln
	seen := map[string]bool{}
	for _, v := range rep.Called {
		seen[v.ID] = true
		if v.Module == stdlib {
			std = append(std, v)
			continue
		}
		if reason, ok := allow[v.ID]; ok {
			fmt.Fprintf(w, "allowed: %s in %s@%s: %s\n", v.ID, v.Module, v.Version, reason)
			continue
		}
		pass = false
		fmt.Fprintf(w, "FAIL: %s in %s@%s, called from %s: %s (fixed in %s)\n",
			v.ID, v.Module, v.Version, orUnknown(v.CalledFrom), v.Summary, orNone(v.Fixed))
	}
	var stale []string
	for id := range allow {
		if !seen[id] {
			stale = append(stale, id)
		}
	}
	slices.Sort(stale)
	for _, id := range stale {
		fmt.Fprintf(w, "allowed but no longer reported (remove it from the allow file): %s\n", id)
	}
	if len(std) > 0 {
		need := ""
		for _, v := range std {
			fmt.Fprintf(w, "standard library (%s): %s, called from %s: %s (fixed in go%s)\n",
				rep.GoVersion, v.ID, orUnknown(v.CalledFrom), v.Summary, strings.TrimPrefix(orNone(v.Fixed), "v"))
			if v.Fixed != "" && newer(v.Fixed, need) {
				need = v.Fixed
			}
		}
		advice := "build binaries with go" + strings.TrimPrefix(need, "v") + " or later"
		if need == "" {
			advice = "no Go release fixes them yet"
		}
		fmt.Fprintf(w, "%d advisories of the standard library are reached with %s: not failed (the host builds with its own Go); %s\n",
			len(std), rep.GoVersion, advice)
	}
	mods := len(rep.Called) - len(std)
	fmt.Fprintf(w, "govulncheck (database %s): %d advisories reached in modules, %d in the standard library\n", rep.DB, mods, len(std))
	return pass
}

// newer reports whether Go version a ("v1.26.10") is later than b ("" is
// earlier than any).
func newer(a, b string) bool {
	if b == "" {
		return true
	}
	pa, pb := strings.Split(strings.TrimPrefix(a, "v"), "."), strings.Split(strings.TrimPrefix(b, "v"), ".")
	for i := 0; i < len(pa) && i < len(pb); i++ {
		x, errx := strconv.Atoi(pa[i])
		y, erry := strconv.Atoi(pb[i])
		if errx != nil || erry != nil {
			return pa[i] > pb[i]
		}
		if x != y {
			return x > y
		}
	}
	return len(pa) > len(pb)
}

func orNone(s string) string {
	if s == "" {
		return "no release"
	}
	return s
}

func orUnknown(s string) string {
	if s == "" {
		return "(unknown)"
	}
	return s
}
