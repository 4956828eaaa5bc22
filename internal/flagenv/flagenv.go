// Package flagenv gives every command-line flag an environment-variable fallback, so the same
// binary is configured by flags on a laptop and by env in a manifest: --policy-file falls back
// to WARDEN_POLICY_FILE. A flag given on the command line always wins.
package flagenv

import (
	"flag"
	"fmt"
	"os"
	"strings"
)

// Name is the environment variable for a flag: prefix + upper-case, '-' and '.' become '_'.
func Name(prefix, flagName string) string {
	return prefix + strings.NewReplacer("-", "_", ".", "_").Replace(strings.ToUpper(flagName))
}

// Apply sets every flag of fs that was not given on the command line from its environment
// variable, if that is set. Call it after fs.Parse.
func Apply(fs *flag.FlagSet, prefix string) error {
	given := map[string]bool{}
	fs.Visit(func(f *flag.Flag) { given[f.Name] = true })
	var err error
	fs.VisitAll(func(f *flag.Flag) {
		if given[f.Name] || err != nil {
			return
		}
		if v, ok := os.LookupEnv(Name(prefix, f.Name)); ok {
			if e := fs.Set(f.Name, v); e != nil {
				err = fmt.Errorf("%s=%q: %w", Name(prefix, f.Name), v, e)
			}
		}
	})
	return err
}
