package main

import (
	"fmt"
	"strconv"
	"strings"
	"time"

	"github.com/warden-dev/warden/internal/testing/openloop"
)

// sweep runs the rates in increasing order against one warm webhook and reports the highest
// one whose p99 stayed under the bound with no failures. It stops at the first rate that does
// not: past the knee the queue only grows, and the next step would measure the backlog. With
// cpu (the webhook child's CPU so far; nil for -target) it also reports the webhook's CPU per
// request at each rate, warm-up included.
func sweep(rates []int, duration, warmup, bound time.Duration, send func() error, cpu func() time.Duration) {
	best := 0
	fmt.Printf("%8s %10s %10s %10s %8s %12s\n", "rate", "p50", "p99", "achieved", "failed", "server CPU")
	for _, r := range rates {
		var cpu0 time.Duration
		if cpu != nil {
			cpu0 = cpu()
		}
		res := openloop.Run(r, duration, warmup, send)
		perRequest := "-"
		if cpu != nil && res.Sent > 0 { // the CPU covers the warm-up's requests too
			perRequest = ((cpu() - cpu0) / time.Duration(res.Sent)).Round(time.Microsecond).String() + "/req"
		}
		p50, p99 := res.Percentile(0.50), res.Percentile(0.99)
		fmt.Printf("%8d %10s %10s %10.0f %8d %12s\n", r, p50.Round(time.Microsecond), p99.Round(time.Microsecond), res.Rate(), res.Failures, perRequest)
		if res.Failures > 0 || p99 >= bound || res.Rate() < 0.97*float64(r) {
			break
		}
		best = r
	}
	fmt.Printf("highest rate with p99 < %s: %d req/s\n", bound, best)
}

func parseRates(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n <= 0 || (len(out) > 0 && n <= out[len(out)-1]) {
			return nil, fmt.Errorf("-sweep %q: want increasing positive rates, e.g. 500,1000,1500", s)
		}
		out = append(out, n)
	}
	return out, nil
}
