package main

import (
	"bufio"
	"bytes"
	"context"
	"encoding/json"
	"flag"
	"io"
	"net/http"
	"net/http/httptest"
	"net/url"
	"os"
	"os/exec"
	"regexp"
	"slices"
	"strings"
	"testing"
	"time"
)

// runCmd runs the command line in this process and returns its exit code
// and output.
func runCmd(t *testing.T, args ...string) (code int, stdout, stderr string) {
	t.Helper()
	var o, e bytes.Buffer
	code = run(t.Context(), args, &o, &e)
	return code, o.String(), e.String()
}

// clientCommands are the subcommands that talk to a hub.
var clientCommands = []string{"publish", "subscribe", "token", "bench"}

// flagNames returns the flags a subcommand's -h lists.
func flagNames(t *testing.T, cmd string) []string {
	t.Helper()
	code, out, _ := runCmd(t, cmd, "-h")
	if code != 0 {
		t.Fatalf("%s -h: exit %d", cmd, code)
	}
	var names []string
	for _, m := range regexp.MustCompile(`(?m)^  -(\S+)`).FindAllStringSubmatch(out, -1) {
		names = append(names, m[1])
	}
	if len(names) == 0 {
		t.Fatalf("%s -h lists no flags:\n%s", cmd, out)
	}
	return names
}

func TestHelpGoesToStdout(t *testing.T) {
	for _, cmd := range append([]string{"serve"}, clientCommands...) {
		t.Run(cmd, func(t *testing.T) {
			code, out, errOut := runCmd(t, cmd, "-h")
			if code != 0 || !strings.HasPrefix(out, "Usage: ssehub "+cmd) || errOut != "" {
				t.Errorf("exit %d, stdout %.80q, stderr %q; want exit 0 and the usage on stdout only", code, out, errOut)
			}
		})
	}
}

// The commands that take flags only refuse an argument, saying so.
func TestFlagsOnlyCommandsRefuseArguments(t *testing.T) {
	for _, cmd := range []string{"serve", "token"} {
		t.Run(cmd, func(t *testing.T) {
			code, out, errOut := runCmd(t, cmd, "extra")
			want := "ssehub " + cmd + `: unexpected argument "extra" (flags start with --)`
			if code != 2 || out != "" || !strings.Contains(errOut, want) {
				t.Errorf("exit %d, stdout %q, stderr %q; want exit 2 saying %q", code, out, errOut, want)
			}
		})
	}
}

func TestServeHelpGroupsFlags(t *testing.T) {
	fs, _ := serveFlags(io.Discard)
	grouped := make(map[string]int)
	for _, g := range serveGroups {
		for _, name := range g.flags {
			grouped[name]++
		}
	}
	fs.VisitAll(func(f *flag.Flag) {
		if grouped[f.Name] != 1 {
			t.Errorf("flag --%s is in %d groups of serveGroups, want 1", f.Name, grouped[f.Name])
		}
	})
	_, out, _ := runCmd(t, "serve", "-h")
	at := 0
	for _, g := range serveGroups {
		i := strings.Index(out[at:], "\n"+g.title+":\n")
		if i < 0 {
			t.Fatalf("serve -h has no group %q after position %d:\n%s", g.title, at, out)
		}
		at += i + 1
	}
	if strings.Contains(out, "\nOther:\n") {
		t.Errorf("serve -h has flags in no group:\n%s", out)
	}
}

func TestClientEnvironmentIsNotServes(t *testing.T) {
	// No client subcommand's variable is one of serve's, now or after a
	// flag is added to either: SSEHUB_PUBLISH_RATE would be both serve
	// --publish-rate and publish --rate.
	fs, _ := serveFlags(io.Discard)
	serveVars := make(map[string]string)
	fs.VisitAll(func(f *flag.Flag) { serveVars[envName(fs, f.Name)] = f.Name })
	for _, cmd := range clientCommands {
		cfs := flag.NewFlagSet("ssehub "+cmd, flag.ContinueOnError)
		for _, name := range flagNames(t, cmd) {
			if v := envName(cfs, name); serveVars[v] != "" {
				t.Errorf("%s --%s and serve --%s share the variable %s", cmd, name, serveVars[v], v)
			}
		}
	}

	// A hub's environment does not become the data of a publish.
	var got []url.Values
	srv := httptest.NewServer(http.HandlerFunc(func(w http.ResponseWriter, r *http.Request) {
		r.ParseForm()
		got = append(got, r.PostForm)
		io.WriteString(w, "urn:uuid:1")
	}))
	defer srv.Close()
	t.Setenv("SSEHUB_DATA", "/var/lib/ssehub")
	t.Setenv("SSEHUB_TOKEN", "not-for-publish")
	if code, _, errOut := runCmd(t, "publish", "--topic", "t", srv.URL); code != 0 {
		t.Fatalf("publish: exit %d: %s", code, errOut)
	}
	t.Setenv("SSEHUB_PUBLISH_DATA", "from the environment")
	// Flags may follow the URL.
	if code, _, errOut := runCmd(t, "publish", srv.URL, "--topic", "t2"); code != 0 {
		t.Fatalf("publish with flags after the URL: exit %d: %s", code, errOut)
	}
	if len(got) != 2 || got[0].Get("data") != "" || got[1].Get("data") != "from the environment" || got[1].Get("topic") != "t2" {
		t.Errorf("published %v; want no data, then SSEHUB_PUBLISH_DATA's on topic t2", got)
	}
}

func TestInvalidEnvironmentNamesTheVariable(t *testing.T) {
	for _, tc := range []struct{ cmd, variable string }{
		{"serve", "SSEHUB_HISTORY_SIZE"},
		{"publish", "SSEHUB_PUBLISH_TIMEOUT"},
		{"subscribe", "SSEHUB_SUBSCRIBE_COUNT"},
		{"token", "SSEHUB_TOKEN_TTL"},
		{"bench", "SSEHUB_BENCH_RATE"},
	} {
		t.Run(tc.cmd, func(t *testing.T) {
			t.Setenv(tc.variable, "lots")
			code, _, errOut := runCmd(t, tc.cmd, "http://127.0.0.1:1/")
			if code != 2 || !strings.Contains(errOut, `invalid value "lots" for `+tc.variable) {
				t.Errorf("exit %d, stderr %q; want 2 and a message naming %s", code, errOut, tc.variable)
			}
		})
	}
}

func TestBenchURLBeforeFlagsAndSettleZero(t *testing.T) {
	p := startHub(t, t.TempDir())
	code, out, errOut := runCmd(t, "bench", p.base+"/.well-known/mercure", "--subscribers", "2", "--rate", "20",
		"--duration", "300ms", "--settle", "0", "--drain", "2s", "--key", testPubKey, "--json", "--progress", "0")
	if code != 0 {
		t.Fatalf("bench: exit %d\n%s\n%s", code, out, errOut)
	}
	var rep struct {
		URL    string `json:"url"`
		Phases struct {
			SettleS float64 `json:"settle_s"`
		} `json:"phases"`
	}
	if err := json.Unmarshal([]byte(out), &rep); err != nil {
		t.Fatalf("%v\n%s", err, out)
	}
	if rep.Phases.SettleS > 0.5 {
		t.Errorf("--settle 0 settled %.2fs", rep.Phases.SettleS)
	}
	if !strings.HasPrefix(out, "{") || !strings.Contains(out, p.base) {
		t.Errorf("the URL before the flags was not used:\n%s", out)
	}
}

func TestSelfCommandAfterGoRun(t *testing.T) {
	args0 := os.Args[0]
	defer func() { os.Args[0] = args0 }()
	t.Chdir("../..") // the module root, where the README runs "go run ./cmd/ssehub"
	os.Args[0] = "/tmp/go-build1234/b001/exe/ssehub"
	if got := selfCommand(); got != "go run ./cmd/ssehub" {
		t.Errorf("after go run from the module root: %q", got)
	}
	os.Args[0] = "./ssehub"
	if got := selfCommand(); got != "./ssehub" {
		t.Errorf("started as ./ssehub: %q", got)
	}
}

// TestWelcomeHintsWorkAsPrinted runs the banner's commands through sh:
// they must need nothing but the binary (named as it was started) and curl.
func TestWelcomeHintsWorkAsPrinted(t *testing.T) {
	if _, err := exec.LookPath("curl"); err != nil {
		t.Skip("curl is not installed")
	}
	for _, alg := range []string{"HS256", "HS512"} {
		t.Run(alg, func(t *testing.T) { testWelcomeHints(t, alg) })
	}
}

func testWelcomeHints(t *testing.T, alg string) {
	ctx, cancel := context.WithTimeout(t.Context(), 30*time.Second)
	defer cancel()
	cmd := exec.CommandContext(ctx, binary, "serve", "--addr", "localhost:0", "--data", t.TempDir(), "--no-dashboard", "--publisher-jwt-alg", alg)
	stdout, _ := cmd.StdoutPipe()
	if err := cmd.Start(); err != nil {
		t.Fatal(err)
	}
	defer func() { cmd.Process.Kill(); cmd.Wait() }()
	sc := bufio.NewScanner(stdout)
	var lines []string
	for sc.Scan() && !strings.Contains(sc.Text(), "--subscribe '*'") {
		lines = append(lines, sc.Text())
	}
	banner := strings.Join(lines, "\n")
	if !regexp.MustCompile(`is running on http://localhost:\d+\n`).MatchString(banner) {
		t.Fatalf("the banner does not show the localhost address the README shows:\n%s", banner)
	}
	command := func(after string) string {
		i := slices.IndexFunc(lines, func(l string) bool { return strings.HasPrefix(l, after) })
		if i < 0 || i+1 >= len(lines) {
			t.Fatalf("no %q in the banner:\n%s", after, banner)
		}
		return strings.TrimSpace(lines[i+1])
	}
	sh := func(line string) string {
		out, err := exec.CommandContext(ctx, "sh", "-c", line).CombinedOutput()
		if err != nil {
			t.Fatalf("%s: %v\n%s", line, err, out)
		}
		return strings.TrimSpace(string(out))
	}
	if out := sh(command("Publish:") + " -sf"); out == "" {
		t.Errorf("the printed curl publish returned no id")
	}
	tok := sh(command("the tokens above are valid"))
	pub := exec.CommandContext(ctx, binary, "publish", "--topic", "t", "--token", tok, strings.TrimSuffix(regexp.MustCompile(`http://localhost:\d+`).FindString(banner), "/")+"/.well-known/mercure")
	if out, err := pub.CombinedOutput(); err != nil {
		t.Errorf("publishing with the token of the printed command: %v\n%s", err, out)
	}
}

func TestVersionIsStamped(t *testing.T) {
	defer func(v string) { buildVersion = v }(buildVersion)
	buildVersion = "v1.2.3"
	if code, out, _ := runCmd(t, "version"); code != 0 || out != "ssehub v1.2.3\n" {
		t.Errorf("exit %d, %q; want the stamped version", code, out)
	}
}
