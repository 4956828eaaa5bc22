package openloop

import (
	"os"
	"testing"
	"time"
)

func TestProcessCPU(t *testing.T) {
	before := ProcessCPU(os.Getpid())
	for deadline := time.Now().Add(50 * time.Millisecond); time.Now().Before(deadline); {
	}
	if after := ProcessCPU(os.Getpid()); after <= before {
		t.Errorf("CPU did not grow over 50 ms of spinning: %s then %s", before, after)
	}
	if got := ProcessCPU(-1); got != 0 {
		t.Errorf("ProcessCPU of no process = %s, want 0", got)
	}
}
