// Package errdecl reads Go source to hold an API's error mapping to the errors that can reach it:
// every exported Err* variable of the packages the API calls must appear in the mapping, so an
// error added to a package and forgotten in the table fails a test instead of becoming a 500.
package errdecl

import (
	"go/ast"
	"go/parser"
	"go/token"
	"os"
	"path/filepath"
	"sort"
	"strings"
)

// Declared returns the exported package-level variables named Err* declared in dir's non-test
// Go files, qualified with the package name ("stage.ErrNotFound").
func Declared(dir string) ([]string, error) {
	entries, err := os.ReadDir(dir)
	if err != nil {
		return nil, err
	}
	fset := token.NewFileSet()
	var out []string
	for _, e := range entries {
		if e.IsDir() || !strings.HasSuffix(e.Name(), ".go") || strings.HasSuffix(e.Name(), "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, filepath.Join(dir, e.Name()), nil, 0)
		if err != nil {
			return nil, err
		}
		for _, d := range f.Decls {
			gd, ok := d.(*ast.GenDecl)
			if !ok || gd.Tok != token.VAR {
				continue
			}
			for _, spec := range gd.Specs {
				for _, id := range spec.(*ast.ValueSpec).Names {
					if strings.HasPrefix(id.Name, "Err") && id.IsExported() {
						out = append(out, f.Name.Name+"."+id.Name)
					}
				}
			}
		}
	}
	sort.Strings(out)
	return out, nil
}

// Referenced returns the qualified identifiers (pkg.Name) used in the initializer of the
// package-level variable varName in file.
func Referenced(file, varName string) ([]string, error) {
	f, err := parser.ParseFile(token.NewFileSet(), filepath.Clean(file), nil, 0)
	if err != nil {
		return nil, err
	}
	var out []string
	ast.Inspect(f, func(n ast.Node) bool {
		vs, ok := n.(*ast.ValueSpec)
		if !ok || len(vs.Names) != 1 || vs.Names[0].Name != varName {
			return true
		}
		for _, v := range vs.Values {
			ast.Inspect(v, func(n ast.Node) bool {
				if sel, ok := n.(*ast.SelectorExpr); ok {
					if x, ok := sel.X.(*ast.Ident); ok {
						out = append(out, x.Name+"."+sel.Sel.Name)
					}
				}
				return true
			})
		}
		return false
	})
	return out, nil
}
