// Package cli is the `warden` command. Inside a Warden pod (a workspace terminal, a job's shell)
// it talks to the pod's sidecar on 127.0.0.1:$WARDEN_PORT and needs no credentials of its own.
// From outside any pod (a laptop, a workspace of another owner) it talks to the broker with the
// bearer token of the user's kubeconfig, and RBAC decides (target.go).
package cli

import (
	"bufio"
	"context"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"os"
	"slices"
	"strings"

	"golang.org/x/term"
)

const usage = `usage:
  warden secrets --list [--show-secrets] | --get KEY | --set KEY [--json] | --delete KEY | --delete-all | --overwrite-all FILE.json
      inside a Warden pod: the pod owner's secrets, through its sidecar
      with --owner NAMESPACE/NAME: that owner's secrets from anywhere, through the broker
      (--broker URL, --broker-ca FILE, your kubeconfig's token; RBAC on owners/secrets)
  warden access [--permission read|write|delete] [--user NAME]
      what you (or, for an admin, NAME) may do: datasets, orgs and spaces with the roles held`

type cli struct {
	t      *target
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Run executes one command line (without the program name).
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 {
		return errors.New(usage)
	}
	switch args[0] {
	case "secrets":
		return runSecrets(args[1:], stdin, stdout, stderr)
	case "access":
		return runAccess(args[1:], stdout, stderr)
	}
	return errors.New(usage)
}

func runSecrets(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("warden secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.Bool("list", false, "list secret names")
	show := fs.Bool("show-secrets", false, "with --list: print values too")
	get := fs.String("get", "", "print one secret's value")
	set := fs.String("set", "", "set one secret (value prompted without echo, or read from stdin)")
	asJSON := fs.Bool("json", false, "with --set: the value is JSON (a number, an object, ...), not text")
	del := fs.String("delete", "", "delete one secret")
	delAll := fs.Bool("delete-all", false, "delete every secret")
	overwrite := fs.String("overwrite-all", "", "replace all secrets with the JSON object in FILE (values of any JSON type)")
	tf := addTargetFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	chosen := 0
	for _, on := range []bool{*list, *get != "", *set != "", *del != "", *delAll, *overwrite != ""} {
		if on {
			chosen++
		}
	}
	if chosen != 1 {
		return errors.New("give exactly one of --list, --get, --set, --delete, --delete-all, --overwrite-all")
	}
	t, err := tf.target(true)
	if err != nil {
		return err
	}
	c := &cli{t: t, stdin: stdin, stdout: stdout, stderr: stderr}
	return t.explain(c.secrets(secretsOp{list: *list, show: *show, get: *get, set: *set, asJSON: *asJSON, del: *del, delAll: *delAll, overwrite: *overwrite}))
}

// secretsOp is the one thing `warden secrets` was asked to do.
type secretsOp struct {
	list, show, asJSON, delAll bool
	get, set, del, overwrite   string
}

func (c *cli) secrets(op secretsOp) error {
	ctx, api := context.Background(), c.t.secrets()
	switch {
	case op.list && op.show:
		all, _, err := api.All(ctx)
		if err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(all)) {
			fmt.Fprintf(c.stdout, "%s=%s\n", k, text(all[k]))
		}
		return nil
	case op.list:
		keys, _, err := api.Keys(ctx)
		for _, k := range keys {
			fmt.Fprintln(c.stdout, k)
		}
		return err
	case op.get != "":
		v, _, err := api.Get(ctx, op.get)
		if err != nil {
			return err
		}
		fmt.Fprintln(c.stdout, text(v))
		return nil
	case op.set != "":
		return c.set(op.set, op.asJSON)
	case op.del != "":
		_, err := api.Delete(ctx, op.del, "")
		return err
	case op.delAll:
		_, err := api.DeleteAll(ctx, "")
		return err
	default:
		data, err := os.ReadFile(op.overwrite)
		if err != nil {
			return err
		}
		var all map[string]json.RawMessage
		if err := json.Unmarshal(data, &all); err != nil || all == nil {
			return fmt.Errorf("%s must hold a JSON object of secrets: %v", op.overwrite, err)
		}
		_, err = api.Put(ctx, all, "")
		return err
	}
}

// set reads the value, then changes one key against the version read: a concurrent change
// makes this fail (409) instead of being lost.
func (c *cli) set(key string, asJSON bool) error {
	value, err := c.readValue(key)
	if err != nil {
		return err
	}
	raw, _ := json.Marshal(value)
	if asJSON {
		if !json.Valid([]byte(value)) {
			return fmt.Errorf("the value for %s is not JSON (drop --json to store it as text)", key)
		}
		raw = []byte(value)
	}
	ctx, api := context.Background(), c.t.secrets()
	all, version, err := api.All(ctx)
	if err != nil {
		return err
	}
	all[key] = raw
	_, err = api.Put(ctx, all, version)
	return err
}

// text prints a secret: a string as its text, any other JSON value as JSON.
func text(v json.RawMessage) string {
	var s string
	if json.Unmarshal(v, &s) == nil {
		return s
	}
	return string(v)
}

// readValue prompts without echo on a terminal, and reads one line from a pipe.
func (c *cli) readValue(key string) (string, error) {
	if f, ok := c.stdin.(*os.File); ok && term.IsTerminal(int(f.Fd())) {
		fmt.Fprintf(c.stderr, "value for %s: ", key)
		b, err := term.ReadPassword(int(f.Fd()))
		fmt.Fprintln(c.stderr)
		return string(b), err
	}
	line, err := bufio.NewReader(c.stdin).ReadString('\n')
	if err != nil && !(errors.Is(err, io.EOF) && line != "") {
		return "", fmt.Errorf("reading the value from stdin: %w", err)
	}
	return strings.TrimRight(line, "\r\n"), nil
}

// runAccess prints what you may do: inside a pod, the pod's owner and you together (through
// the sidecar); with --broker, you (or --user NAME, for an admin) from anywhere.
func runAccess(args []string, stdout, stderr io.Writer) error {
	fs := flag.NewFlagSet("warden access", flag.ContinueOnError)
	fs.SetOutput(stderr)
	permission := fs.String("permission", "", "only what needs this permission: read, upload, upload/main, delete, assume")
	user := fs.String("user", "", "with --broker: another user (needs get on accesses.warden.dev named NAME)")
	asJSON := fs.Bool("json", false, "print the broker's answer as JSON")
	tf := addTargetFlags(fs)
	if err := fs.Parse(args); err != nil {
		return err
	}
	t, err := tf.target(false)
	if err != nil {
		return err
	}
	if *user != "" && !t.broker {
		return errors.New("--user needs --broker: inside a pod, the listing is for the pod's owner and its caller")
	}
	a, err := t.access(*permission, *user)
	if err != nil {
		return t.explain(err)
	}
	if *asJSON {
		enc := json.NewEncoder(stdout)
		enc.SetIndent("", "  ")
		return enc.Encode(a)
	}
	fmt.Fprintf(stdout, "for %s\n", strings.Join(a.Subjects, " and "))
	for _, d := range a.Datasets {
		fmt.Fprintf(stdout, "dataset %s: %s\n", d.ID, strings.Join(d.Permissions, ", "))
	}
	for _, o := range a.Orgs {
		fmt.Fprintf(stdout, "org %s (%s): %s\n", o.Name, o.GCPServiceAccount, strings.Join(o.Permissions, ", "))
	}
	for _, sp := range a.Spaces {
		fmt.Fprintf(stdout, "space %s/%s, role %s: %s\n", sp.Org, sp.Space, sp.Role, strings.Join(sp.Permissions, ", "))
	}
	return nil
}
