// Package openloop drives a request function at a fixed rate and reports latency percentiles,
// for the load tools in hack/. Request i is due at start + i/rate and runs on its own goroutine,
// so a slow response never delays the next request; latency is measured from the moment the
// request is sent, and how late the generator's timer fired (Linux timers overshoot by up to a
// millisecond) is reported separately instead of being charged to the server.
package openloop

import (
	"fmt"
	"slices"
	"sync"
	"time"
)

// Result of a run.
type Result struct {
	Latencies []time.Duration // successful requests
	Late      []time.Duration
	Failures  int
	FirstErr  error
	Elapsed   time.Duration
	Sent      int // requests sent, the warm-up's included
}

// Run sends rate requests per second for warmup+duration and measures those after warmup.
func Run(rate int, duration, warmup time.Duration, send func() error) Result {
	interval := time.Second / time.Duration(rate)
	total := int((warmup + duration) / interval)
	skip := int(warmup / interval)
	r := Result{Latencies: make([]time.Duration, 0, total-skip), Late: make([]time.Duration, 0, total-skip), Sent: total}
	var mu sync.Mutex
	var wg sync.WaitGroup
	start := time.Now()
	for i := 0; i < total; i++ {
		due := start.Add(time.Duration(i) * interval)
		time.Sleep(time.Until(due))
		wg.Add(1)
		go func(i int, due time.Time) {
			defer wg.Done()
			sent := time.Now()
			err := send()
			d := time.Since(sent)
			if i < skip {
				return
			}
			mu.Lock()
			defer mu.Unlock()
			r.Late = append(r.Late, sent.Sub(due))
			if err != nil {
				r.Failures++
				if r.FirstErr == nil {
					r.FirstErr = err
				}
				return
			}
			r.Latencies = append(r.Latencies, d)
		}(i, due)
	}
	wg.Wait()
	r.Elapsed = time.Since(start.Add(time.Duration(skip) * interval))
	return r
}

// Rate is the achieved request rate.
func (r Result) Rate() float64 {
	return float64(len(r.Latencies)+r.Failures) / r.Elapsed.Seconds()
}

// Percentiles formats p50/p90/p99/p99.9/max of d (sorting it).
func Percentiles(d []time.Duration) string {
	if len(d) == 0 {
		return "no samples"
	}
	slices.Sort(d)
	at := func(p float64) string { return quantile(d, p).Round(time.Microsecond).String() }
	return fmt.Sprintf("p50 %s  p90 %s  p99 %s  p99.9 %s  max %s", at(.50), at(.90), at(.99), at(.999), at(1))
}

// Percentile is the latency at p (0..1) of the successful requests, 0 with none. It sorts
// r.Latencies in place, as Percentiles does (a second call finds them sorted).
func (r Result) Percentile(p float64) time.Duration {
	if len(r.Latencies) == 0 {
		return 0
	}
	slices.Sort(r.Latencies)
	return quantile(r.Latencies, p)
}

// quantile is the element at p (0..1) of sorted, which is not empty.
func quantile(sorted []time.Duration, p float64) time.Duration {
	return sorted[min(len(sorted)-1, int(p*float64(len(sorted))))]
}

// Report prints the standard summary.
func (r Result) Report() string {
	return fmt.Sprintf("requests %d ok, %d failed, achieved %.0f req/s\nlatency        %s\ngenerator late %s (timer wake-up after the due time; not in latency)\n",
		len(r.Latencies), r.Failures, r.Rate(), Percentiles(r.Latencies), Percentiles(r.Late))
}
