package main

import (
	"bytes"
	"errors"
	"flag"
	"fmt"
	"io"
	"os"
	"runtime/debug"
	"strings"
)

// envName is the environment variable for flag flagName of fs: for
// serve, SSEHUB_ plus the flag's name in upper case with dashes as
// underscores (--history-size is SSEHUB_HISTORY_SIZE); for the client
// subcommands the same with the subcommand's name in the prefix
// (publish --token is SSEHUB_PUBLISH_TOKEN), so that a hub's environment
// never configures a client run beside it (SSEHUB_DATA is serve's data
// directory, not the data publish sends).
func envName(fs *flag.FlagSet, flagName string) string {
	prefix := "SSEHUB_"
	if cmd, ok := strings.CutPrefix(fs.Name(), "ssehub "); ok && cmd != "serve" {
		prefix += strings.ToUpper(cmd) + "_"
	}
	return prefix + strings.ToUpper(strings.ReplaceAll(flagName, "-", "_"))
}

// lookupEnv returns the environment variable that sets flag name of fs
// and whether it is set: envName, else for serve the Mercure variable it
// aliases (see mercureEnv).
func lookupEnv(fs *flag.FlagSet, name string) (value, variable string, ok bool) {
	variable = envName(fs, name)
	if value, ok = os.LookupEnv(variable); ok || fs.Name() != "ssehub serve" || mercureEnv[name] == "" {
		return value, variable, ok
	}
	alias := mercureEnv[name]
	value, ok = os.LookupEnv(alias)
	return value, alias, ok
}

// parseFlags parses args into fs and then sets every flag that was not on
// the command line from its environment variable, if set, and then from the
// config file named by a "config" flag, if fs has one and it is set.
// Command-line flags win over the environment, which wins over the file,
// which wins over defaults.
func parseFlags(fs *flag.FlagSet, args []string) error {
	if err := fs.Parse(args); err != nil {
		return err
	}
	given := make(map[string]bool)
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, name, ok := lookupEnv(fs, f.Name); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("invalid value %q for %s: %v", v, name, e)
			}
			given[f.Name] = true
		}
	})
	if err != nil {
		return err
	}
	return applyConfigFile(fs, given) // the file (--config) comes last
}

// newFlagSet returns the FlagSet of a subcommand whose -h prints usage
// and then the flags.
func newFlagSet(name, usage string) *flag.FlagSet {
	fs := flag.NewFlagSet(name, flag.ContinueOnError)
	fs.Usage = func() {
		fmt.Fprint(fs.Output(), usage)
		fs.PrintDefaults()
	}
	return fs
}

// parseFlagsOnly is parseCommand for a subcommand that takes flags only:
// a positional argument is an error too.
func parseFlagsOnly(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (code int, ok bool) {
	rest, code, ok := parseCommand(fs, args, stdout, stderr)
	if ok && len(rest) > 0 {
		fmt.Fprintf(stderr, "%s: unexpected argument %q (flags start with --)\n", fs.Name(), rest[0])
		return 2, false
	}
	return code, ok
}

// parseCommand parses the arguments of a subcommand into fs: flags may
// come before and after the positional arguments (which it returns; "--"
// ends the flags), then the flags not given take their environment
// variable and config file (parseFlags). -h prints the usage on stdout;
// other errors go to stderr, naming the flag, variable or file at fault.
// When ok is false the command exits with code.
func parseCommand(fs *flag.FlagSet, args []string, stdout, stderr io.Writer) (positional []string, code int, ok bool) {
	var msg bytes.Buffer
	fs.SetOutput(&msg)
	defer fs.SetOutput(stderr)
	rest := args
	for {
		err := fs.Parse(rest)
		if errors.Is(err, flag.ErrHelp) {
			stdout.Write(msg.Bytes())
			return nil, 0, false
		}
		if err != nil {
			stderr.Write(msg.Bytes())
			return nil, 2, false
		}
		consumed := rest[:len(rest)-fs.NArg()]
		if fs.NArg() == 0 {
			break
		}
		if len(consumed) > 0 && consumed[len(consumed)-1] == "--" {
			positional = append(positional, fs.Args()...)
			break
		}
		positional = append(positional, fs.Arg(0))
		rest = fs.Args()[1:]
	}
	if err := parseFlags(fs, nil); err != nil {
		fmt.Fprintf(stderr, "%s: %v\n", fs.Name(), err)
		return nil, 2, false
	}
	return positional, 0, true
}

// listFlag is a repeatable or comma-separated string flag.
type listFlag []string

func (l *listFlag) String() string { return strings.Join(*l, ",") }

func (l *listFlag) Set(v string) error {
	for _, s := range strings.Split(v, ",") {
		if s = strings.TrimSpace(s); s != "" {
			*l = append(*l, s)
		}
	}
	return nil
}

// buildVersion is the release version, stamped in by scripts/release.sh
// (-ldflags "-X main.buildVersion=v1.2.0"); empty in other builds.
var buildVersion string

// version is buildVersion, else the module version of "go install
// module@version", else "(devel)".
func version() string {
	if buildVersion != "" {
		return buildVersion
	}
	if bi, ok := debug.ReadBuildInfo(); ok && bi.Main.Version != "" {
		return bi.Main.Version
	}
	return "(devel)"
}
