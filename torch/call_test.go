package torch

import (
	"go/ast"
	"go/parser"
	"go/token"
	"path/filepath"
	"strings"
	"testing"
)

// uintptrEscapes are the functions marked go:uintptrescapes (and purego's own SyscallN): a Go
// pointer converted to uintptr in their argument list stays alive and in place for the call.
var uintptrEscapes = map[string]bool{"call": true, "cudaCall": true, "SyscallN": true}

// Every Go pointer the binding hands to the shim is converted to uintptr in the argument list of
// call (or cudaCall, or purego.SyscallN), nowhere else: a conversion in a helper or in a variable
// set before the call hides the pointer from the garbage collector, which may free and reuse the
// memory while the shim reads it. Such a bug shows once in a hundred runs as garbage shapes; this
// test reads the package's sources and names each conversion made elsewhere.
func TestPointersConvertedInCallArguments(t *testing.T) {
	files, err := filepath.Glob("*.go")
	if err != nil {
		t.Fatal(err)
	}
	fset := token.NewFileSet()
	checked := 0
	for _, name := range files {
		if strings.HasSuffix(name, "_test.go") {
			continue
		}
		f, err := parser.ParseFile(fset, name, nil, 0)
		if err != nil {
			t.Fatal(err)
		}
		for _, d := range f.Decls {
			fd, ok := d.(*ast.FuncDecl)
			if !ok || fd.Body == nil {
				continue
			}
			ptrs := unsafePointerVars(fd)
			allowed := map[ast.Expr]bool{}
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				c, ok := n.(*ast.CallExpr)
				if ok && uintptrEscapes[calleeName(c.Fun)] {
					for _, a := range c.Args {
						allowed[a] = true
					}
				}
				return true
			})
			ast.Inspect(fd.Body, func(n ast.Node) bool {
				c, ok := n.(*ast.CallExpr)
				if !ok || !isPointerToUintptr(c, ptrs) {
					return true
				}
				checked++
				if !allowed[c] {
					t.Errorf("%s: a pointer converted to uintptr outside the argument list of call: the memory may be freed or moved during the call",
						fset.Position(c.Pos()))
				}
				return true
			})
		}
	}
	if checked < 50 {
		t.Fatalf("found %d conversions of a pointer to uintptr; the binding makes far more: the check does not see them", checked)
	}
}

// calleeName is the called function's name: f for f(…), Sel for x.Sel(…).
func calleeName(e ast.Expr) string {
	switch f := e.(type) {
	case *ast.Ident:
		return f.Name
	case *ast.SelectorExpr:
		return f.Sel.Name
	}
	return ""
}

// isPointerToUintptr reports whether c is uintptr(unsafe.Pointer(…)) or uintptr(p) for p an
// unsafe.Pointer variable of the function.
func isPointerToUintptr(c *ast.CallExpr, ptrs map[string]bool) bool {
	if id, ok := c.Fun.(*ast.Ident); !ok || id.Name != "uintptr" || len(c.Args) != 1 {
		return false
	}
	switch a := c.Args[0].(type) {
	case *ast.CallExpr:
		return isUnsafePointer(a.Fun)
	case *ast.Ident:
		return ptrs[a.Name]
	}
	return false
}

func isUnsafePointer(e ast.Expr) bool {
	s, ok := e.(*ast.SelectorExpr)
	if !ok {
		return false
	}
	x, ok := s.X.(*ast.Ident)
	return ok && x.Name == "unsafe" && s.Sel.Name == "Pointer"
}

// unsafePointerVars are fd's parameters and variables declared with the type unsafe.Pointer.
func unsafePointerVars(fd *ast.FuncDecl) map[string]bool {
	out := map[string]bool{}
	add := func(names []*ast.Ident, typ ast.Expr) {
		if isUnsafePointer(typ) {
			for _, n := range names {
				out[n.Name] = true
			}
		}
	}
	for _, p := range fd.Type.Params.List {
		add(p.Names, p.Type)
	}
	ast.Inspect(fd.Body, func(n ast.Node) bool {
		if vs, ok := n.(*ast.ValueSpec); ok {
			add(vs.Names, vs.Type)
		}
		return true
	})
	return out
}
