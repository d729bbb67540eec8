// lua-harness runs an Argo CD health script the way the Argo CD application controller runs an
// argocd-cm override (argoproj/argo-cd util/lua/lua.go runLua, ExecuteHealthLua; health.go
// GetResourceHealth): gopher-lua WITHOUT the open libraries (no string, math, io; no string
// methods), then package, base, table and Argo's "safe" os functions, a 1 s timeout, the object
// as the global `obj`, the returned table encoded with gopher-json and checked against the valid
// health codes. An object with a deletionTimestamp is "Progressing: Pending deletion" before any
// script runs; a script error is Unknown with the error text, as in the controller.
//
//	lua-harness -script argocd/health.lua -tests argocd/health_test.yaml [-json]
//	    runs every case of an Argo CD health_test.yaml (inputPath relative to the tests file);
//	    prints one line per case (or a JSON array with -json); exit 1 when a case fails
//	lua-harness -script argocd/health.lua -obj app.yaml
//	    prints the health of one object (STATUS and MESSAGE lines, like
//	    `argocd admin settings resource-overrides health`)
//	lua-harness -sandbox
//	    prints what the sandbox exposes (a self-check that it matches Argo CD's)
package main

import (
	"context"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"strings"
	"time"

	lua "github.com/yuin/gopher-lua"
	luajson "layeh.com/gopher-json"
	"sigs.k8s.io/yaml"
)

// Health is Argo CD's HealthStatus (gitops-engine pkg/health).
type Health struct {
	Status  string `json:"status"`
	Message string `json:"message"`
}

type testCase struct {
	InputPath    string `json:"inputPath"`
	HealthStatus Health `json:"healthStatus"`
}

type result struct {
	InputPath string `json:"inputPath"`
	Want      Health `json:"want"`
	Got       Health `json:"got"`
	Error     string `json:"error,omitempty"`
	Pass      bool   `json:"pass"`
}

var validCodes = map[string]bool{"Healthy": true, "Progressing": true, "Degraded": true, "Suspended": true, "Missing": true, "Unknown": true}

// newState opens exactly what Argo CD opens for a script without useOpenLibs.
func newState() *lua.LState {
	l := lua.NewState(lua.Options{SkipOpenLibs: true})
	for _, pair := range []struct {
		n string
		f lua.LGFunction
	}{
		{lua.LoadLibName, lua.OpenPackage},
		{lua.BaseLibName, lua.OpenBase},
		{lua.TabLibName, lua.OpenTable},
		{lua.OsLibName, openSafeOs},
	} {
		if err := l.CallByParam(lua.P{Fn: l.NewFunction(pair.f), NRet: 0, Protect: true}, lua.LString(pair.n)); err != nil {
			panic(err)
		}
	}
	l.PreloadModule(lua.OsLibName, safeOsLoader)
	return l
}

// Argo CD's OpenSafeOs registers os.time/os.date under the *table* module name (so there is no
// global `os`); `require("os")` gets them through the preloaded loader.
var osFuncs = map[string]lua.LGFunction{
	"time": func(l *lua.LState) int { l.Push(lua.LNumber(time.Now().Unix())); return 1 },
	"date": func(l *lua.LState) int { l.Push(lua.LString(time.Now().UTC().Format(time.RFC3339))); return 1 },
}

func openSafeOs(l *lua.LState) int {
	l.Push(l.RegisterModule(lua.TabLibName, osFuncs))
	return 1
}

func safeOsLoader(l *lua.LState) int {
	l.Push(l.SetFuncs(l.NewTable(), osFuncs))
	return 1
}

// decodeValue is Argo CD's conversion of the live object into Lua values.
func decodeValue(l *lua.LState, value any) lua.LValue {
	switch v := value.(type) {
	case bool:
		return lua.LBool(v)
	case float64:
		return lua.LNumber(v)
	case int64:
		return lua.LNumber(v)
	case int:
		return lua.LNumber(v)
	case string:
		return lua.LString(v)
	case json.Number:
		return lua.LString(v)
	case []any:
		arr := l.CreateTable(len(v), 0)
		for _, item := range v {
			arr.Append(decodeValue(l, item))
		}
		return arr
	case map[string]any:
		tbl := l.CreateTable(0, len(v))
		for key, item := range v {
			tbl.RawSetH(lua.LString(key), decodeValue(l, item))
		}
		return tbl
	}
	return lua.LNil
}

// executeHealthLua mirrors ExecuteHealthLua; an error means Argo CD shows Unknown with its text.
func executeHealthLua(obj map[string]any, script string) (Health, error) {
	l := newState()
	defer l.Close()
	ctx, cancel := context.WithTimeout(context.Background(), time.Second)
	defer cancel()
	l.SetContext(ctx)
	l.SetGlobal("obj", decodeValue(l, obj))
	if err := l.DoString(script); err != nil {
		return Health{}, err
	}
	ret := l.Get(-1)
	if ret.Type() != lua.LTTable {
		return Health{}, fmt.Errorf("expect table output from Lua script, not %s", ret.Type().String())
	}
	raw, err := luajson.Encode(ret)
	if err != nil {
		return Health{}, err
	}
	var h Health
	if err := json.Unmarshal(raw, &h); err != nil {
		return Health{}, err
	}
	if !validCodes[h.Status] {
		return Health{Status: "Unknown", Message: "Lua returned an invalid health status"}, nil
	}
	return h, nil
}

// resourceHealth mirrors gitops-engine's GetResourceHealth for an object with a Lua override.
func resourceHealth(obj map[string]any, script string) (Health, error) {
	if md, ok := obj["metadata"].(map[string]any); ok && md["deletionTimestamp"] != nil {
		return Health{Status: "Progressing", Message: "Pending deletion"}, nil
	}
	h, err := executeHealthLua(obj, script)
	if err != nil {
		return Health{Status: "Unknown", Message: err.Error()}, err
	}
	return h, nil
}

func readYAML(path string, into any) error {
	data, err := os.ReadFile(path)
	if err != nil {
		return err
	}
	if err := yaml.Unmarshal(data, into); err != nil {
		return fmt.Errorf("%s: %w", path, err)
	}
	return nil
}

func runTests(script, testsPath string) ([]result, error) {
	var tests struct {
		Tests []testCase `json:"tests"`
	}
	if err := readYAML(testsPath, &tests); err != nil {
		return nil, err
	}
	if len(tests.Tests) == 0 {
		return nil, fmt.Errorf("%s: no tests", testsPath)
	}
	results := make([]result, 0, len(tests.Tests))
	for _, tc := range tests.Tests {
		r := result{InputPath: tc.InputPath, Want: tc.HealthStatus}
		var obj map[string]any
		if err := readYAML(filepath.Join(filepath.Dir(testsPath), tc.InputPath), &obj); err != nil {
			r.Error = err.Error()
		} else {
			got, err := resourceHealth(obj, script)
			r.Got = got
			if err != nil {
				r.Error = err.Error()
			}
		}
		r.Pass = r.Error == "" && r.Got == r.Want
		results = append(results, r)
	}
	return results, nil
}

// sandbox reports what a script sees, to check the harness is as strict as Argo CD.
func sandbox() (map[string]string, error) {
	l := newState()
	defer l.Close()
	probe := `
local report = {}
for _, name in ipairs({"string", "math", "io", "os", "debug", "table", "require", "loadstring", "tonumber"}) do
  report[name] = type(_G[name])
end
report["require(os).time"] = type(require("os").time)
report['("x"):upper()'] = pcall(function() return ("x"):upper() end) and "works" or "fails"
report['#"abc"'] = tostring(#"abc")
report['"a" < "b"'] = tostring("a" < "b")
return report`
	if err := l.DoString(probe); err != nil {
		return nil, err
	}
	out := map[string]string{}
	l.Get(-1).(*lua.LTable).ForEach(func(k, v lua.LValue) { out[k.String()] = v.String() })
	return out, nil
}

func main() {
	scriptPath := flag.String("script", "", "the health.lua to run")
	testsPath := flag.String("tests", "", "an Argo CD health_test.yaml to check")
	objPath := flag.String("obj", "", "one object (YAML) to evaluate")
	asJSON := flag.Bool("json", false, "print the -tests results as JSON")
	sandboxFlag := flag.Bool("sandbox", false, "print what the sandbox exposes (JSON)")
	flag.Parse()

	if *sandboxFlag {
		report, err := sandbox()
		if err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(2)
		}
		_ = json.NewEncoder(os.Stdout).Encode(report)
		return
	}
	if *scriptPath == "" || (*testsPath == "") == (*objPath == "") {
		fmt.Fprintln(os.Stderr, "usage: lua-harness -script health.lua (-tests health_test.yaml [-json] | -obj object.yaml) | -sandbox")
		os.Exit(2)
	}
	scriptBytes, err := os.ReadFile(*scriptPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	script := string(scriptBytes)

	if *objPath != "" {
		var obj map[string]any
		if err := readYAML(*objPath, &obj); err != nil {
			fmt.Fprintln(os.Stderr, "error:", err)
			os.Exit(2)
		}
		h, _ := resourceHealth(obj, script)
		fmt.Printf("STATUS: %s\nMESSAGE: %s\n", h.Status, h.Message)
		return
	}

	results, err := runTests(script, *testsPath)
	if err != nil {
		fmt.Fprintln(os.Stderr, "error:", err)
		os.Exit(2)
	}
	failed := 0
	for _, r := range results {
		if !r.Pass {
			failed++
		}
	}
	if *asJSON {
		_ = json.NewEncoder(os.Stdout).Encode(results)
	} else {
		for _, r := range results {
			mark := "ok  "
			if !r.Pass {
				mark = "FAIL"
			}
			fmt.Printf("%s %s: %s %q\n", mark, r.InputPath, r.Got.Status, r.Got.Message)
			if !r.Pass {
				fmt.Printf("     want %s %q%s\n", r.Want.Status, r.Want.Message, strings.TrimSuffix(" "+r.Error, " "))
			}
		}
		fmt.Printf("%d passed, %d failed\n", len(results)-failed, failed)
	}
	if failed > 0 {
		os.Exit(1)
	}
}
