// Command funclen fails when a function outside tests, generated code and hack/ is longer than
// -max lines, so a newcomer can read any function of Warden in one screen. It prints the
// longest ones either way.
package main

import (
	"flag"
	"fmt"
	"go/ast"
	"go/parser"
	"go/token"
	"io/fs"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

type fn struct {
	name  string
	lines int
}

func main() {
	limit := flag.Int("max", 80, "longest function allowed, in lines")
	top := flag.Int("top", 5, "how many of the longest to print")
	flag.Parse()
	root := flag.Arg(0)
	if root == "" {
		root = "."
	}
	fns, err := measure(root)
	if err != nil {
		fmt.Fprintln(os.Stderr, "funclen:", err)
		os.Exit(2)
	}
	sort.Slice(fns, func(i, j int) bool { return fns[i].lines > fns[j].lines })
	failed := false
	for i, f := range fns {
		if f.lines > *limit {
			fmt.Printf("funclen: %s is %d lines (at most %d)\n", f.name, f.lines, *limit)
			failed = true
		} else if i < *top {
			fmt.Printf("funclen: %d lines %s\n", f.lines, f.name)
		}
	}
	if failed {
		os.Exit(1)
	}
}

func measure(root string) ([]fn, error) {
	var out []fn
	err := filepath.WalkDir(root, func(p string, d fs.DirEntry, err error) error {
		if err != nil {
			return err
		}
		name := d.Name()
		if d.IsDir() {
			if p != root && (strings.HasPrefix(name, ".") || name == "hack" || name == "testdata" || name == "node_modules") {
				return filepath.SkipDir
			}
			return nil
		}
		if !strings.HasSuffix(name, ".go") || strings.HasSuffix(name, "_test.go") || strings.HasPrefix(name, "zz_generated") {
			return nil
		}
		fset := token.NewFileSet()
		f, err := parser.ParseFile(fset, p, nil, 0)
		if err != nil {
			return err
		}
		for _, decl := range f.Decls {
			if fd, ok := decl.(*ast.FuncDecl); ok && fd.Body != nil {
				n := fset.Position(fd.End()).Line - fset.Position(fd.Pos()).Line + 1
				out = append(out, fn{p + ":" + fd.Name.Name, n})
			}
		}
		return nil
	})
	return out, err
}
