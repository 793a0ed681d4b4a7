package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"net/url"
	"os"
	"strconv"
	"strings"
	"time"

	"go.yaml.in/yaml/v3"
)

// The config file is YAML: a mapping whose keys are flag names (without
// dashes in front) and whose values are what the flag would be given, e.g.
//
//	addr: ":8080"
//	history-size: 100000
//	cors-origins: [https://app.example.com, https://admin.example.com]
//	anonymous: true
//
// Precedence: command-line flags > SSEHUB_* environment variables > the
// config file > defaults. An unknown key or a bad value fails at startup
// with the file, the line and the key.

// errConfig marks config file errors.
var errConfig = errors.New("config file")

// configEntry is one setting of a config file.
type configEntry struct {
	key, value string
	line       int
}

// notInFile are flags that make no sense in a config file.
var notInFile = map[string]bool{"config": true, "print-config": true}

// readConfigFile returns the settings of the YAML file at path, in order.
func readConfigFile(path string) ([]configEntry, error) {
	b, err := os.ReadFile(path)
	if err != nil {
		return nil, fmt.Errorf("%w: cannot read --config %s: %w", errConfig, path, err)
	}
	var doc yaml.Node
	if err := yaml.Unmarshal(b, &doc); err != nil {
		return nil, fmt.Errorf("%w %s: not valid YAML: %w", errConfig, path, err)
	}
	if doc.Kind == 0 || len(doc.Content) == 0 {
		return nil, nil // empty file
	}
	root := doc.Content[0]
	if root.Kind == yaml.ScalarNode && root.Tag == "!!null" {
		return nil, nil
	}
	if root.Kind != yaml.MappingNode {
		return nil, fmt.Errorf("%w %s line %d: the file must be a mapping of flag names to values (history-size: 1000)", errConfig, path, root.Line)
	}
	var out []configEntry
	seen := make(map[string]int)
	for i := 0; i+1 < len(root.Content); i += 2 {
		k, v := root.Content[i], root.Content[i+1]
		if v.Kind == yaml.AliasNode && v.Alias != nil {
			v = v.Alias
		}
		if prev, dup := seen[k.Value]; dup {
			return nil, fmt.Errorf("%w %s line %d: key %q is already set on line %d", errConfig, path, k.Line, k.Value, prev)
		}
		seen[k.Value] = k.Line
		e := configEntry{key: k.Value, line: k.Line}
		switch v.Kind {
		case yaml.ScalarNode:
			if v.Tag == "!!null" {
				continue // "key:" with no value leaves the setting alone
			}
			e.value = v.Value
		case yaml.SequenceNode:
			items := make([]string, 0, len(v.Content))
			for _, it := range v.Content {
				if it.Kind != yaml.ScalarNode {
					return nil, fmt.Errorf("%w %s line %d: key %q: a list may only hold plain values", errConfig, path, it.Line, k.Value)
				}
				items = append(items, it.Value)
			}
			e.value = strings.Join(items, ",")
		default:
			return nil, fmt.Errorf("%w %s line %d: key %q needs a value or a list, not a mapping", errConfig, path, v.Line, k.Value)
		}
		out = append(out, e)
	}
	return out, nil
}

// applyConfigFile sets, from the file named by fs's "config" flag (if
// any), every flag that set does not mark as given already (on the
// command line or in the environment). An unknown key or a bad value is an
// error naming the file, line and key.
func applyConfigFile(fs *flag.FlagSet, set map[string]bool) error {
	cf := fs.Lookup("config")
	if cf == nil || cf.Value.String() == "" {
		return nil
	}
	path := cf.Value.String()
	entries, err := readConfigFile(path)
	if err != nil {
		return err
	}
	for _, e := range entries {
		if fs.Lookup(e.key) == nil || notInFile[e.key] {
			return fmt.Errorf("%w %s line %d: unknown key %q%s (the keys are the flag names of %q, without dashes)",
				errConfig, path, e.line, e.key, suggest(fs, e.key), fs.Name()+" -h")
		}
		if set[e.key] {
			continue
		}
		if err := fs.Set(e.key, e.value); err != nil {
			return fmt.Errorf("%w %s line %d: invalid value %q for %s: %v", errConfig, path, e.line, e.value, e.key, err)
		}
	}
	return nil
}

// suggest returns ", did you mean x?" for the flag name closest to key,
// or "" when none is close.
func suggest(fs *flag.FlagSet, key string) string {
	best, bestD := "", 4
	fs.VisitAll(func(f *flag.Flag) {
		if notInFile[f.Name] {
			return
		}
		if d := editDistance(key, f.Name); d < bestD {
			best, bestD = f.Name, d
		}
	})
	if best == "" {
		return ""
	}
	return ", did you mean " + strconv.Quote(best) + "?"
}

func editDistance(a, b string) int {
	prev := make([]int, len(b)+1)
	cur := make([]int, len(b)+1)
	for j := range prev {
		prev[j] = j
	}
	for i := 1; i <= len(a); i++ {
		cur[0] = i
		for j := 1; j <= len(b); j++ {
			cost := 1
			if a[i-1] == b[j-1] {
				cost = 0
			}
			cur[j] = min(prev[j]+1, cur[j-1]+1, prev[j-1]+cost)
		}
		prev, cur = cur, prev
	}
	return prev[len(b)]
}

// secretFlags are never printed.
var secretFlags = map[string]bool{"publisher-jwt-key": true, "subscriber-jwt-key": true}

// printConfig prints the effective configuration of `ssehub serve` as a
// YAML config file, each line with where its value came from. Secrets are
// left out (as comments) and passwords in URLs masked.
func printConfig(w io.Writer, fs *flag.FlagSet, args []string) error {
	onCmdline := make(map[string]bool)
	cmd, _ := serveFlags(io.Discard)
	if err := cmd.Parse(args); err != nil {
		return err
	}
	cmd.Visit(func(f *flag.Flag) { onCmdline[f.Name] = true })
	inFile := make(map[string]bool)
	if path := fs.Lookup("config").Value.String(); path != "" {
		entries, err := readConfigFile(path)
		if err != nil {
			return err
		}
		for _, e := range entries {
			inFile[e.key] = true
		}
	}
	var b strings.Builder
	b.WriteString("# ssehub serve: effective configuration (flags > environment > config file > defaults).\n")
	b.WriteString("# Usable as a --config file; each line says where its value came from.\n")
	fs.VisitAll(func(f *flag.Flag) {
		if f.Name == "print-config" {
			return
		}
		src := "default"
		_, envVar, inEnv := lookupEnv(fs, f.Name)
		switch {
		case onCmdline[f.Name]:
			src = "flag --" + f.Name
		case inEnv:
			src = "environment " + envVar
		case inFile[f.Name]:
			src = "config file"
		}
		val := f.Value.String()
		switch {
		case secretFlags[f.Name] && val != "":
			fmt.Fprintf(&b, "# %s: (set; not shown)  # %s\n", f.Name, src)
		case notInFile[f.Name]:
			fmt.Fprintf(&b, "# %s: %s  # %s\n", f.Name, yamlValue(f), src)
		default:
			if f.Name == "log" && val != "" {
				if u, err := url.Parse(val); err == nil {
					f = &flag.Flag{Name: f.Name, Value: stringValue(u.Redacted())}
				}
			}
			fmt.Fprintf(&b, "%s: %s  # %s\n", f.Name, yamlValue(f), src)
		}
	})
	_, err := io.WriteString(w, b.String())
	return err
}

// stringValue is a read-only flag.Value of a string.
type stringValue string

func (s stringValue) String() string   { return string(s) }
func (s stringValue) Set(string) error { return errors.New("read-only") }
func (s stringValue) Get() any         { return string(s) }

// yamlValue formats a flag's value as YAML.
func yamlValue(f *flag.Flag) string {
	if l, ok := f.Value.(*listFlag); ok {
		items := make([]string, len(*l))
		for i, s := range *l {
			items[i] = yamlString(s)
		}
		return "[" + strings.Join(items, ", ") + "]"
	}
	if g, ok := f.Value.(flag.Getter); ok {
		switch v := g.Get().(type) {
		case string:
			return yamlString(v)
		case time.Duration:
			return v.String()
		}
	}
	return f.Value.String()
}

// yamlString formats s as a YAML string scalar, quoted when needed.
func yamlString(s string) string {
	if strings.ContainsAny(s, "\r\n") {
		return strconv.Quote(s)
	}
	out, err := yaml.Marshal(s)
	if err != nil {
		return strconv.Quote(s)
	}
	return strings.TrimSuffix(string(out), "\n")
}
