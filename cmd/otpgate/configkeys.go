package main

import (
	"bytes"
	"fmt"
	"os"
	"reflect"
	"regexp"
	"slices"
	"strconv"
	"strings"
	"time"
)

// unknownKeys names every key in m (a YAML mapping as viper read it) that
// the struct type t has no field for, with the nearest known key when one
// is close: a typo is then reported with its fix, all typos at once, and
// together with the file's other problems.
func unknownKeys(m map[string]any, t reflect.Type, path string, p *problems) {
	for t.Kind() == reflect.Pointer {
		t = t.Elem()
	}
	if t.Kind() != reflect.Struct {
		return
	}
	fields := map[string]reflect.Type{}
	keysOf(t, fields)
	known := slices.Sorted(func(yield func(string) bool) {
		for k := range fields {
			if !yield(k) {
				return
			}
		}
	})
	for _, k := range slices.Sorted(func(yield func(string) bool) {
		for k := range m {
			if !yield(k) {
				return
			}
		}
	}) {
		key := k
		if path != "" {
			key = path + "." + k
		}
		ft, ok := fields[k]
		if !ok {
			if near := nearest(k, known); near != "" {
				p.add(key, "unknown key; did you mean %s?", near)
			} else {
				p.add(key, "unknown key; the keys here are %s", strings.Join(known, ", "))
			}
			continue
		}
		for ft.Kind() == reflect.Pointer {
			ft = ft.Elem()
		}
		switch v := m[k].(type) {
		case map[string]any:
			unknownKeys(v, ft, key, p)
		case []any:
			if ft.Kind() != reflect.Slice {
				continue
			}
			for i, e := range v {
				if em, ok := e.(map[string]any); ok {
					unknownKeys(em, ft.Elem(), fmt.Sprintf("%s[%d]", key, i), p)
				}
			}
		}
	}
}

// keysOf adds the keys of struct type t to fields, those of structs
// squashed into it (`mapstructure:",squash"`) too.
func keysOf(t reflect.Type, fields map[string]reflect.Type) {
	for i := range t.NumField() {
		f := t.Field(i)
		name, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		if name == "" && opts == "squash" && f.Type.Kind() == reflect.Struct {
			keysOf(f.Type, fields)
			continue
		}
		if name != "" && f.IsExported() {
			fields[name] = f.Type
		}
	}
}

// nearest is the known key closest to k, if it is a likely typo of it.
func nearest(k string, known []string) string {
	best, bestD := "", 3
	for _, c := range known {
		d := editDistance(k, c)
		if d < bestD || d == bestD && best == "" {
			best, bestD = c, d
		}
	}
	if best != "" && bestD <= max(1, len(k)/3) {
		return best
	}
	// A singular for a plural, or a key with a prefix or suffix more.
	for _, c := range known {
		if strings.HasPrefix(c, k) || strings.HasPrefix(k, c) {
			return c
		}
	}
	return ""
}

// editDistance is the number of letters to insert, delete, change or
// swap with their neighbour to make a into b (optimal string alignment).
func editDistance(a, b string) int {
	d := make([][]int, len(a)+1)
	for i := range d {
		d[i] = make([]int, len(b)+1)
		d[i][0] = i
	}
	for j := range d[0] {
		d[0][j] = j
	}
	for i := 1; i <= len(a); i++ {
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			d[i][j] = min(d[i-1][j]+1, d[i][j-1]+1, d[i-1][j-1]+cost)
			if i > 1 && j > 1 && a[i-1] == b[j-2] && a[i-2] == b[j-1] {
				d[i][j] = min(d[i][j], d[i-2][j-2]+1)
			}
		}
	}
	return d[len(a)][len(b)]
}

var durationType = reflect.TypeOf(time.Duration(0))

// durationHook decodes a duration from the file: a Go duration such as
// "3m" or "1h30m", or days such as "7d". A bare number is refused, since
// YAML's 180 would otherwise be 180 nanoseconds; 0 is allowed.
func durationHook(_ reflect.Type, to reflect.Type, data any) (any, error) {
	if to != durationType {
		return data, nil
	}
	switch v := data.(type) {
	case string:
		d, err := parseDuration(v)
		if err != nil {
			return nil, err
		}
		return d, nil
	case int, int64, int32, uint, uint64, float64, float32:
		if fmt.Sprint(v) == "0" {
			return time.Duration(0), nil
		}
		return nil, fmt.Errorf("%v has no unit: a number needs a unit, such as %vs (units: ms, s, m, h, d)", v, v)
	}
	return data, nil
}

var daysRE = regexp.MustCompile(`^(\d+)d$`)

// parseDuration reads a Go duration ("90s", "3m", "1h30m") or a number of
// days ("7d"), and says what it takes when it cannot.
func parseDuration(s string) (time.Duration, error) {
	s = strings.TrimSpace(s)
	if m := daysRE.FindStringSubmatch(s); m != nil {
		n, err := strconv.Atoi(m[1])
		if err == nil && n <= 100*365 {
			return time.Duration(n) * 24 * time.Hour, nil
		}
	}
	d, err := time.ParseDuration(s)
	if err != nil {
		return 0, fmt.Errorf("%q is not a duration: write a number and a unit, such as 180s, 3m, 1h30m or 7d (units: ms, s, m, h, d)", s)
	}
	return d, nil
}

// decodeProblems turns mapstructure's error text into problems named by
// key like the others: "'tenants[0].code_ttl' msg" becomes
// "tenants[0].code_ttl: msg".
func decodeProblems(err error, p *problems) {
	msg := strings.TrimPrefix(err.Error(), "decoding failed due to the following error(s):\n\n")
	for _, line := range strings.Split(msg, "\n") {
		line = strings.TrimSpace(line)
		if line == "" {
			continue
		}
		if key, rest, ok := strings.Cut(strings.TrimPrefix(line, "'"), "' "); ok && strings.HasPrefix(line, "'") {
			rest = strings.TrimPrefix(rest, "error decoding: ")
			// mapstructure wraps a hook's error in its own words.
			if i := strings.LastIndex(rest, "': "); i >= 0 {
				rest = rest[i+3:]
			}
			p.add(key, "%s", rest)
			continue
		}
		p.add("config", "%s", line)
	}
}

// readSecretFile reads a shared secret from the first line of a file; a
// file with more than one line that is not empty is refused, since a
// comment above the secret would otherwise become the secret and every
// request would be dropped.
func readSecretFile(path, key string, p *problems) []byte {
	b, err := os.ReadFile(path)
	if err != nil {
		p.add(key, "%v", err)
		return nil
	}
	lines := bytes.Split(b, []byte("\n"))
	n := 0
	for _, l := range lines {
		if len(bytes.TrimSpace(l)) > 0 {
			n++
		}
	}
	secret := bytes.TrimRight(lines[0], "\r")
	switch {
	case n > 1:
		p.add(key, "%s has %d lines that are not empty; it must hold only the secret, on its first line (no comments)", path, n)
	case len(secret) == 0 && n == 1:
		p.add(key, "%s starts with an empty line; it must hold the secret on its first line", path)
	case len(secret) == 0:
		p.add(key, "%s is empty", path)
	}
	return secret
}
