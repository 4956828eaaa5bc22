// Package cli is the `warden` command users run inside a Warden pod (a workspace terminal, a
// job's shell). It talks to the pod's sidecar on 127.0.0.1:$WARDEN_PORT, so it needs no
// credentials of its own.
package cli

import (
	"bufio"
	"bytes"
	"encoding/json"
	"errors"
	"flag"
	"fmt"
	"io"
	"maps"
	"net/http"
	"os"
	"slices"
	"strings"
	"time"

	"golang.org/x/term"
)

type cli struct {
	base   string
	http   *http.Client
	stdin  io.Reader
	stdout io.Writer
	stderr io.Writer
}

// Run executes one command line (without the program name).
func Run(args []string, stdin io.Reader, stdout, stderr io.Writer) error {
	if len(args) == 0 || args[0] != "secrets" {
		return errors.New("usage: warden secrets --list | --get KEY | --set KEY | --delete KEY | --overwrite-all FILE.json")
	}
	fs := flag.NewFlagSet("warden secrets", flag.ContinueOnError)
	fs.SetOutput(stderr)
	list := fs.Bool("list", false, "list secret names")
	show := fs.Bool("show-secrets", false, "with --list: print values too")
	get := fs.String("get", "", "print one secret's value")
	set := fs.String("set", "", "set one secret (value prompted without echo, or read from stdin)")
	del := fs.String("delete", "", "delete one secret")
	overwrite := fs.String("overwrite-all", "", "replace all secrets with the JSON object in FILE")
	url := fs.String("url", "", "sidecar URL (default http://127.0.0.1:$WARDEN_PORT)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	chosen := 0
	for _, on := range []bool{*list, *get != "", *set != "", *del != "", *overwrite != ""} {
		if on {
			chosen++
		}
	}
	if chosen != 1 {
		return errors.New("give exactly one of --list, --get, --set, --delete, --overwrite-all")
	}
	c := &cli{base: *url, http: &http.Client{Timeout: 30 * time.Second}, stdin: stdin, stdout: stdout, stderr: stderr}
	if c.base == "" {
		port := os.Getenv("WARDEN_PORT")
		if port == "" {
			return errors.New("WARDEN_PORT is not set: run this inside a Warden pod, or pass --url")
		}
		c.base = "http://127.0.0.1:" + port
	}
	switch {
	case *list && *show:
		all, _, err := c.all()
		if err != nil {
			return err
		}
		for _, k := range slices.Sorted(maps.Keys(all)) {
			fmt.Fprintf(stdout, "%s=%s\n", k, all[k])
		}
		return nil
	case *list:
		var out struct{ Keys []string }
		if _, err := c.do("GET", "/v1/secrets", nil, "", &out); err != nil {
			return err
		}
		for _, k := range out.Keys {
			fmt.Fprintln(stdout, k)
		}
		return nil
	case *get != "":
		var out struct{ Value string }
		if _, err := c.do("GET", "/v1/secrets/"+*get, nil, "", &out); err != nil {
			return err
		}
		fmt.Fprintln(stdout, out.Value)
		return nil
	case *set != "":
		value, err := c.readValue(*set)
		if err != nil {
			return err
		}
		// Read, change one key, write back against the version read: a concurrent change
		// makes this fail (409) instead of being lost.
		all, version, err := c.all()
		if err != nil {
			return err
		}
		all[*set] = value
		_, err = c.do("PUT", "/v1/secrets", all, version, nil)
		return err
	case *del != "":
		_, err := c.do("DELETE", "/v1/secrets/"+*del, nil, "", nil)
		return err
	default:
		data, err := os.ReadFile(*overwrite)
		if err != nil {
			return err
		}
		var all map[string]string
		if err := json.Unmarshal(data, &all); err != nil {
			return fmt.Errorf("%s must hold a JSON object of string values: %w", *overwrite, err)
		}
		_, err = c.do("PUT", "/v1/secrets", all, "", nil)
		return err
	}
}

func (c *cli) all() (map[string]string, string, error) {
	all := map[string]string{}
	etag, err := c.do("GET", "/v1/secrets?all=true", nil, "", &all)
	return all, etag, err
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

// do calls the sidecar; it returns the ETag and decodes a JSON answer into out.
func (c *cli) do(method, path string, body any, ifMatch string, out any) (string, error) {
	var rd io.Reader
	if body != nil {
		b, err := json.Marshal(body)
		if err != nil {
			return "", err
		}
		rd = bytes.NewReader(b)
	}
	req, err := http.NewRequest(method, c.base+path, rd)
	if err != nil {
		return "", err
	}
	if body != nil {
		req.Header.Set("Content-Type", "application/json")
	}
	if ifMatch != "" {
		req.Header.Set("If-Match", ifMatch)
	}
	resp, err := c.http.Do(req)
	if err != nil {
		return "", fmt.Errorf("the Warden sidecar is not reachable at %s: %w", c.base, err)
	}
	defer resp.Body.Close()
	data, _ := io.ReadAll(io.LimitReader(resp.Body, 4<<20))
	if resp.StatusCode >= 300 {
		var e struct{ Error string }
		if json.Unmarshal(data, &e) == nil && e.Error != "" {
			return "", fmt.Errorf("%s (%d)", e.Error, resp.StatusCode)
		}
		return "", fmt.Errorf("%s %s: %s", method, path, resp.Status)
	}
	if out != nil && len(data) > 0 {
		if err := json.Unmarshal(data, out); err != nil {
			return "", err
		}
	}
	return resp.Header.Get("ETag"), nil
}
