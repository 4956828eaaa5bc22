// Command warden is Warden's command line:
//
//	warden secrets --list [--show-secrets]   (inside a Warden pod: talks to its sidecar)
//	warden secrets --get KEY
//	warden secrets --set KEY [--json]   (prompts for the value without echo; reads stdin when piped)
//	warden secrets --delete KEY | --delete-all
//	warden secrets --overwrite-all FILE.json
//	warden secrets --owner NS/NAME --broker URL --broker-ca FILE ...   (from outside: the broker, your kubeconfig's token)
//	warden access [--permission P] [--broker URL --broker-ca FILE [--user NAME]]   (what may I do)
//	warden policy convert [--namespace NS] FILE   (for admins: a policy file as objects)
package main

import (
	"errors"
	"flag"
	"fmt"
	"io"
	"os"

	"github.com/warden-dev/warden/pkg/cli"
	"github.com/warden-dev/warden/pkg/policy"
	"github.com/warden-dev/warden/pkg/policyconvert"
)

func main() {
	var err error
	if len(os.Args) > 1 && os.Args[1] == "policy" {
		err = policyCommand(os.Args[2:], os.Stdout)
	} else {
		err = cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr)
	}
	if err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(1)
	}
}

const policyUsage = "usage: warden policy convert [--namespace NS] FILE   (prints the objects; apply them with kubectl apply -f -)"

func policyCommand(args []string, out io.Writer) error {
	if len(args) == 0 || args[0] != "convert" {
		return errors.New(policyUsage)
	}
	fs := flag.NewFlagSet("warden policy convert", flag.ContinueOnError)
	ns := fs.String("namespace", policyconvert.DefaultNamespace, "namespace of the converted Datasets (its snapshot root is the share's root)")
	if err := fs.Parse(args[1:]); err != nil {
		return err
	}
	if fs.NArg() != 1 {
		return errors.New(policyUsage)
	}
	p, err := policy.Load(fs.Arg(0))
	if err != nil {
		return err
	}
	objs, err := policyconvert.Objects(p, *ns)
	if err != nil {
		return err
	}
	y, err := policyconvert.YAML(p, objs)
	if err != nil {
		return err
	}
	_, err = out.Write(y)
	return err
}
