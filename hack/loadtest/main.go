// Command loadtest drives an admission webhook over TLS on loopback at a fixed request rate and
// reports latency percentiles. By default it starts Warden's webhooks in a child process
// (controller-runtime's webhook server with Warden's chain, TLS, HTTP/1.1 keep-alive, as
// deployed) with a static namespace lookup, and each request is what the API server does for
// one pod: the creation to /mutate-v1-pod, then the pod as Warden's patch leaves it to
// /validate-v1-pod (-webhooks mutate for the first alone). -server runs another webhook
// instead (make loadtest-vault: vault-k8s's injector, hack/bench/vaultk8s/serve); -target
// points at a running one.
//
// The generator is open-loop (internal/testing/openloop).
//
//	go run ./hack/loadtest -rate 500 -duration 30s
package main

import (
	"context"
	"errors"
	"flag"
	"fmt"
	"os"
	"runtime/pprof"
	"strings"
	"time"

	"github.com/warden-dev/warden/hack/loadtest/tlsserve"
	"github.com/warden-dev/warden/internal/testing/openloop"
	"github.com/warden-dev/warden/pkg/admission"
)

type options struct {
	rate             int
	duration, warmup time.Duration
	target, caFile   string
	server           string
	webhooks         string
	large            bool
	pin              pinning
	rates            []int
	bound            time.Duration
}

func main() {
	var o options
	flag.IntVar(&o.rate, "rate", 500, "pods per second")
	flag.DurationVar(&o.duration, "duration", 30*time.Second, "how long to send")
	flag.DurationVar(&o.warmup, "warmup", 2*time.Second, "requests sent before measuring")
	flag.StringVar(&o.target, "target", "", "base URL of a running webhook (default: start one in a child process)")
	flag.StringVar(&o.caFile, "ca", "", "CA file for -target")
	flag.StringVar(&o.server, "server", "", "command (space-separated) of another webhook child to start, e.g. vault-k8s's; it prints its base URL and CA file, and serves /mutate")
	flag.StringVar(&o.webhooks, "webhooks", "mutate,validate", "the calls per pod: mutate, or mutate,validate as the API server makes them to Warden")
	flag.BoolVar(&o.large, "large", false, "send the 20-container pod instead of the realistic one")
	pin := flag.String("pin", "", `CPUs for each side, e.g. "server=1;client=0": the webhook child and the generator on separate cores`)
	rates := flag.String("sweep", "", "increasing rates (e.g. 500,1000,2000) run in turn against one webhook, each for -duration; reports the highest with p99 < -max-p99")
	flag.DurationVar(&o.bound, "max-p99", 10*time.Millisecond, "the p99 bound of -sweep")
	cpuProfile := flag.String("cpuprofile", "", "write a CPU profile (of the server when -serve)")
	serve := flag.Bool("serve", false, "internal: run only Warden's webhooks and print their base URL and CA file")
	flag.Parse()
	if *cpuProfile != "" {
		f, err := os.Create(*cpuProfile)
		if err == nil {
			err = pprof.StartCPUProfile(f)
		}
		if err != nil {
			fmt.Fprintln(os.Stderr, "loadtest:", err)
			os.Exit(1)
		}
		defer pprof.StopCPUProfile()
	}
	if *serve {
		serveOnly()
		return
	}
	var err error
	if o.pin, err = parsePinning(*pin); err == nil && *rates != "" {
		o.rates, err = parseRates(*rates)
	}
	if err == nil {
		err = run(o)
	}
	if err != nil {
		pprof.StopCPUProfile()
		fmt.Fprintln(os.Stderr, "loadtest:", err)
		os.Exit(1)
	}
}

func run(o options) error {
	if o.rate <= 0 || o.duration <= 0 {
		return errors.New("rate and duration must be positive")
	}
	paths := []string{admission.MutatePath, admission.ValidatePath}
	switch {
	case o.server != "" && o.webhooks != "mutate":
		return errors.New("-server webhooks only mutate: use -webhooks mutate")
	case o.server != "":
		paths = []string{"/mutate"}
	case o.webhooks == "mutate":
		paths = paths[:1]
	case o.webhooks != "mutate,validate":
		return fmt.Errorf("-webhooks %q: want mutate or mutate,validate", o.webhooks)
	}
	ctx, cancel := context.WithCancel(context.Background())
	defer cancel()
	var childCPU func() time.Duration
	if o.target == "" {
		argv := strings.Fields(o.server)
		if len(argv) == 0 {
			self, err := os.Executable()
			if err != nil {
				return err
			}
			argv = []string{self, "-serve"}
		}
		argv, err := o.pin.wrap(argv)
		if err != nil {
			return err
		}
		child, url, ca, err := tlsserve.Child(ctx, argv)
		if err != nil {
			return err
		}
		defer func() { cancel(); _ = child.Wait() }()
		o.target, o.caFile = url, ca
		childCPU = func() time.Duration { return openloop.ProcessCPU(child.Process.Pid) }
	}
	if err := o.pin.pinSelf(); err != nil {
		return err
	}
	s, err := newSender(o, paths)
	if err != nil {
		return err
	}
	if err := s.send(); err != nil {
		return fmt.Errorf("first request: %w", err)
	}
	if o.rates != nil {
		fmt.Printf("target %s %v, warm-up %s, measuring %s per rate, pod %d bytes, pinned %v\n", o.target, paths, o.warmup, o.duration, s.podBytes, o.pin)
		sweep(o.rates, o.duration, o.warmup, o.bound, s.send, childCPU)
		return nil
	}
	fmt.Printf("target %s %v, %d pods/s, warm-up %s, measuring %s, pod %d bytes\n", o.target, paths, o.rate, o.warmup, o.duration, s.podBytes)
	res := openloop.Run(o.rate, o.duration, o.warmup, s.send)
	fmt.Print(res.Report())
	if res.Failures > 0 {
		return fmt.Errorf("%d requests failed, first: %v", res.Failures, res.FirstErr)
	}
	return nil
}
