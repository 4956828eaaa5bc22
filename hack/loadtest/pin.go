package main

import (
	"fmt"
	"os"
	"os/exec"
	"runtime"
	"strconv"
	"strings"

	"golang.org/x/sys/unix"
)

// pinning splits the machine between the generator and the webhook child, so the rate a
// webhook sustains measures the webhook and not the generator competing with it for the same
// cores (on a 2-core machine both sides need most of a core at the knee). Both webhooks under
// comparison get the same CPUs; the generator gets the others.
type pinning struct {
	server, client []int
}

// parsePinning reads -pin "server=1;client=0" style CPU lists ("" means no pinning).
func parsePinning(s string) (pinning, error) {
	var p pinning
	if s == "" {
		return p, nil
	}
	for _, part := range strings.Split(s, ";") {
		name, list, ok := strings.Cut(part, "=")
		cpus, err := cpuList(list)
		switch {
		case !ok || err != nil:
			return p, fmt.Errorf("-pin %q: want server=CPUS;client=CPUS (e.g. server=1;client=0): %v", s, err)
		case name == "server":
			p.server = cpus
		case name == "client":
			p.client = cpus
		default:
			return p, fmt.Errorf("-pin %q: unknown side %q (server or client)", s, name)
		}
	}
	if len(p.server) == 0 || len(p.client) == 0 {
		return p, fmt.Errorf("-pin %q: name both sides' CPUs", s)
	}
	return p, nil
}

func cpuList(s string) ([]int, error) {
	var out []int
	for _, f := range strings.Split(s, ",") {
		n, err := strconv.Atoi(strings.TrimSpace(f))
		if err != nil || n < 0 || n >= runtime.NumCPU() {
			return nil, fmt.Errorf("CPU %q: want 0..%d", f, runtime.NumCPU()-1)
		}
		out = append(out, n)
	}
	return out, nil
}

func cpuSet(cpus []int) *unix.CPUSet {
	var set unix.CPUSet
	for _, c := range cpus {
		set.Set(c)
	}
	return &set
}

// pinSelf moves every thread of this process onto the client CPUs; threads started later
// inherit the mask from the thread that creates them. GOMAXPROCS follows, so the scheduler
// does not run more Ps than it has cores.
func (p pinning) pinSelf() error {
	if len(p.client) == 0 {
		return nil
	}
	tasks, err := os.ReadDir("/proc/self/task")
	if err != nil {
		return err
	}
	for _, t := range tasks {
		tid, err := strconv.Atoi(t.Name())
		if err != nil {
			continue
		}
		if err := unix.SchedSetaffinity(tid, cpuSet(p.client)); err != nil && err != unix.ESRCH {
			return fmt.Errorf("pin thread %d: %w", tid, err)
		}
	}
	runtime.GOMAXPROCS(len(p.client))
	return nil
}

// wrap starts the child on the server CPUs: through taskset (util-linux), so the child's Go
// runtime sizes GOMAXPROCS from the mask it starts with.
func (p pinning) wrap(argv []string) ([]string, error) {
	if len(p.server) == 0 {
		return argv, nil
	}
	if _, err := exec.LookPath("taskset"); err != nil {
		return nil, fmt.Errorf("-pin needs taskset (util-linux): %w", err)
	}
	cpus := make([]string, len(p.server))
	for i, c := range p.server {
		cpus[i] = strconv.Itoa(c)
	}
	return append([]string{"taskset", "-c", strings.Join(cpus, ",")}, argv...), nil
}

func (p pinning) String() string {
	if len(p.server) == 0 {
		return "no"
	}
	return fmt.Sprintf("server CPUs %v, generator CPUs %v", p.server, p.client)
}
