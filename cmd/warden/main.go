// Command warden is the CLI inside a Warden pod:
//
//	warden secrets --list [--show-secrets]
//	warden secrets --get KEY
//	warden secrets --set KEY          (prompts for the value without echo; reads stdin when piped)
//	warden secrets --delete KEY
//	warden secrets --overwrite-all FILE.json
package main

import (
	"fmt"
	"os"

	"github.com/warden-dev/warden/pkg/cli"
)

func main() {
	if err := cli.Run(os.Args[1:], os.Stdin, os.Stdout, os.Stderr); err != nil {
		fmt.Fprintln(os.Stderr, "warden:", err)
		os.Exit(1)
	}
}
