package main

import (
	"os"
	"path/filepath"
	"strings"
	"testing"
)

func TestMeasure(t *testing.T) {
	dir := t.TempDir()
	long := "package x\n\nfunc long() {\n" + strings.Repeat("\t_ = 1\n", 90) + "}\n\nfunc short() {}\n"
	for name, src := range map[string]string{"x.go": long, "x_test.go": long, "zz_generated.deepcopy.go": long} {
		if err := os.WriteFile(filepath.Join(dir, name), []byte(src), 0o644); err != nil {
			t.Fatal(err)
		}
	}
	if err := os.MkdirAll(filepath.Join(dir, "hack"), 0o755); err != nil {
		t.Fatal(err)
	}
	if err := os.WriteFile(filepath.Join(dir, "hack", "h.go"), []byte(long), 0o644); err != nil {
		t.Fatal(err)
	}
	fns, err := measure(dir)
	if err != nil {
		t.Fatal(err)
	}
	got := map[string]int{}
	for _, f := range fns {
		got[filepath.Base(f.name)] = f.lines
	}
	want := map[string]int{"x.go:long": 92, "x.go:short": 1}
	if len(got) != len(want) || got["x.go:long"] != 92 || got["x.go:short"] != 1 {
		t.Fatalf("got %v, want %v (tests, generated code and hack/ skipped)", got, want)
	}
}
