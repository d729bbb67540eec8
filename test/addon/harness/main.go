// Command harness runs one workflow step of an assembled step definition the way KubeVela
// v1.10.9 does — the definition parsed by `vela def` code, its template run by the workflow task
// runner with KubeVela's real CUE providers (vela/http calls the URL for real) — against an
// in-memory Kubernetes API (controller-runtime's fake client), and prints what the step did.
// test/addon/definitions.test.ts drives it with a stub executor; nothing here talks to a cluster.
// `harness schema <file.cue>` prints the parameter schema KubeVela's controller would store;
// `harness addon <dir> <args-json>` renders an addon directory as `vela addon enable` does.
//
// stdin: {"definition": "<file.cue>", "namespace", "app", "step", "session",
//
//	"properties": {...}, "objects": [<objects in the API>], "outputs": [{name, valueFrom}],
//	"polls": <max evaluations while the step waits>}
//
// stdout: {"polls": [{phase, reason, message, waiting, terminated, failedAfterRetries}],
//
//	"outputs": {name: value}, "objects": [<objects in the API afterwards>]}
package main

import (
	"context"
	"encoding/json"
	"fmt"
	"io/fs"
	"os"
	"path/filepath"

	"cuelang.org/go/cue"

	"github.com/kubevela/pkg/cue/cuex"
	"github.com/kubevela/pkg/util/singleton"
	wfv1alpha1 "github.com/kubevela/workflow/api/v1alpha1"
	wfcontext "github.com/kubevela/workflow/pkg/context"
	"github.com/kubevela/workflow/pkg/tasks/custom"
	wftypes "github.com/kubevela/workflow/pkg/types"
	"helm.sh/helm/v3/pkg/chart/loader"
	"k8s.io/apimachinery/pkg/apis/meta/v1/unstructured"
	"k8s.io/apimachinery/pkg/runtime"
	clientgoscheme "k8s.io/client-go/kubernetes/scheme"
	"k8s.io/klog/v2"
	"sigs.k8s.io/controller-runtime/pkg/client"
	"sigs.k8s.io/controller-runtime/pkg/client/fake"

	pkgaddon "github.com/oam-dev/kubevela/pkg/addon"
	velaprocess "github.com/oam-dev/kubevela/pkg/cue/process"
	pkgdef "github.com/oam-dev/kubevela/pkg/definition"
	"github.com/oam-dev/kubevela/pkg/schema"
	"github.com/oam-dev/kubevela/pkg/workflow/providers"
)

type scenario struct {
	Definition string                   `json:"definition"`
	Namespace  string                   `json:"namespace"`
	App        string                   `json:"app"`
	Step       string                   `json:"step"`
	Session    string                   `json:"session"`
	Properties map[string]interface{}   `json:"properties"`
	Objects    []map[string]interface{} `json:"objects"`
	Outputs    []wfv1alpha1.OutputItem  `json:"outputs"`
	Polls      int                      `json:"polls"`
}

type poll struct {
	Phase              string `json:"phase"`
	Reason             string `json:"reason"`
	Message            string `json:"message"`
	Waiting            bool   `json:"waiting"`
	Terminated         bool   `json:"terminated"`
	FailedAfterRetries bool   `json:"failedAfterRetries"`
}

type result struct {
	Polls   []poll                     `json:"polls"`
	Outputs map[string]json.RawMessage `json:"outputs"`
	Objects []map[string]interface{}   `json:"objects"`
}

func main() {
	klog.SetOutput(os.Stderr)
	run := runStep
	if len(os.Args) == 3 && os.Args[1] == "schema" {
		run = func() error { return printSchema(os.Args[2]) }
	}
	if len(os.Args) == 4 && os.Args[1] == "addon" {
		run = func() error { return renderAddon(os.Args[2], os.Args[3]) }
	}
	if err := run(); err != nil {
		fmt.Fprintln(os.Stderr, "harness:", err)
		os.Exit(1)
	}
}

// loadTemplate parses a definition file as `vela def apply` does and returns its CUE template.
func loadTemplate(path string) (*pkgdef.Definition, string, error) {
	// No cluster: no external CUE packages.
	cuex.EnableExternalPackageForDefaultCompiler = false
	cuex.EnableExternalPackageWatchForDefaultCompiler = false
	src, err := os.ReadFile(path)
	if err != nil {
		return nil, "", err
	}
	def := &pkgdef.Definition{Unstructured: unstructured.Unstructured{}}
	if err := def.FromCUEString(string(src), nil); err != nil {
		return nil, "", fmt.Errorf("error parsing the definition (as vela def apply does): %w", err)
	}
	templ, _, err := unstructured.NestedString(def.Object, "spec", "schematic", "cue", "template")
	if err != nil || templ == "" {
		return nil, "", fmt.Errorf("the definition has no spec.schematic.cue.template")
	}
	return def, templ, nil
}

// printSchema prints the parameter schema KubeVela's definition controller stores in the
// ConfigMap workflowstep-schema-<name> (key openapi-v3-json-schema).
func printSchema(path string) error {
	_, templ, err := loadTemplate(path)
	if err != nil {
		return err
	}
	s, err := schema.ParsePropertiesToSchema(context.Background(), templ)
	if err != nil {
		return fmt.Errorf("KubeVela cannot generate the parameter schema: %w", err)
	}
	b, err := s.MarshalJSON()
	if err != nil {
		return err
	}
	_, err = os.Stdout.Write(append(b, '\n'))
	return err
}

// renderAddon loads an addon directory and renders it with `vela addon enable`'s own code
// (reading, parameter schema, Application, definitions), without applying anything.
func renderAddon(dir, argsJSON string) error {
	cuex.EnableExternalPackageForDefaultCompiler = false
	cuex.EnableExternalPackageWatchForDefaultCompiler = false
	var args map[string]interface{}
	if err := json.Unmarshal([]byte(argsJSON), &args); err != nil {
		return fmt.Errorf("error reading the addon arguments: %w", err)
	}
	name := filepath.Base(dir)
	var files []*loader.BufferedFile
	err := filepath.WalkDir(dir, func(path string, d fs.DirEntry, err error) error {
		if err != nil || d.IsDir() {
			return err
		}
		data, err := os.ReadFile(path)
		if err != nil {
			return err
		}
		rel, err := filepath.Rel(dir, path)
		files = append(files, &loader.BufferedFile{Name: filepath.ToSlash(rel), Data: data})
		return err
	})
	if err != nil {
		return err
	}
	r := &pkgaddon.MemoryReader{Name: name, Files: files}
	metas, err := r.ListAddonMeta()
	if err != nil {
		return err
	}
	meta := metas[name]
	ui, err := pkgaddon.GetUIDataFromReader(r, &meta, pkgaddon.UIMetaOptions)
	if err != nil {
		return err
	}
	pkg, err := pkgaddon.GetInstallPackageFromReader(r, &meta, ui)
	if err != nil {
		return err
	}
	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	app, _, err := pkgaddon.RenderApp(context.Background(), pkg, fake.NewClientBuilder().WithScheme(scheme).Build(), args)
	if err != nil {
		return err
	}
	defs, err := pkgaddon.RenderDefinitions(pkg, nil)
	if err != nil {
		return err
	}
	out := struct {
		Metadata    interface{}                  `json:"metadata"`
		Schema      interface{}                  `json:"parameterSchema"`
		Application interface{}                  `json:"application"`
		Definitions []*unstructured.Unstructured `json:"definitions"`
	}{ui.Meta, ui.APISchema, app, defs}
	return json.NewEncoder(os.Stdout).Encode(out)
}

func runStep() error {
	var sc scenario
	if err := json.NewDecoder(os.Stdin).Decode(&sc); err != nil {
		return fmt.Errorf("error reading the scenario: %w", err)
	}
	if sc.Polls <= 0 {
		sc.Polls = 1
	}
	def, templ, err := loadTemplate(sc.Definition)
	if err != nil {
		return err
	}

	scheme := runtime.NewScheme()
	if err := clientgoscheme.AddToScheme(scheme); err != nil {
		return err
	}
	builder := fake.NewClientBuilder().WithScheme(scheme)
	for _, o := range sc.Objects {
		builder = builder.WithObjects(&unstructured.Unstructured{Object: o})
	}
	cli := builder.Build()
	singleton.KubeClient.Set(cli)
	wfcontext.EnableInMemoryContext = true

	ctx := context.Background()
	pCtx := velaprocess.NewContext(velaprocess.ContextData{
		Namespace:       sc.Namespace,
		AppName:         sc.App,
		CompName:        sc.App,
		AppRevisionName: sc.App + "-v1",
		Ctx:             ctx,
	})
	loader := custom.NewTaskLoader(func(context.Context, string) (string, error) { return templ, nil }, 0, pCtx, providers.DefaultCompiler.Get())
	gen, err := loader.GetTaskGenerator(ctx, def.GetName())
	if err != nil {
		return err
	}
	props, err := json.Marshal(sc.Properties)
	if err != nil {
		return err
	}
	step := wfv1alpha1.WorkflowStep{
		WorkflowStepBase: wfv1alpha1.WorkflowStepBase{
			Name:       sc.Step,
			Type:       def.GetName(),
			Properties: &runtime.RawExtension{Raw: props},
			Outputs:    sc.Outputs,
		},
	}
	wfCtx, err := wfcontext.NewContext(ctx, sc.Namespace, sc.App, nil)
	if err != nil {
		return err
	}

	res := result{Outputs: map[string]json.RawMessage{}, Objects: []map[string]interface{}{}}
	statuses := map[string]wfv1alpha1.StepStatus{}
	for i := 0; i < sc.Polls; i++ {
		// KubeVela makes new task runners on every reconcile: nothing but the step status carries over.
		runner, err := gen(step, &wftypes.TaskGeneratorOptions{ID: sc.Session})
		if err != nil {
			return err
		}
		opts := &wftypes.TaskRunOptions{StepStatus: statuses}
		if os.Getenv("HARNESS_DEBUG") != "" {
			// the task value after the run, as KubeVela's debug mode records it
			opts.Debug = func(_ string, v cue.Value) error {
				fmt.Fprintf(os.Stderr, "--- poll %d task value:\n%v\n", i+1, v)
				return nil
			}
		}
		status, op, err := runner.Run(wfCtx, opts)
		if err != nil {
			return fmt.Errorf("poll %d: %w", i+1, err)
		}
		res.Polls = append(res.Polls, poll{
			Phase: string(status.Phase), Reason: status.Reason, Message: status.Message,
			Waiting: op.Waiting, Terminated: op.Terminated, FailedAfterRetries: op.FailedAfterRetries,
		})
		statuses[sc.Step] = status
		if !op.Waiting {
			break
		}
	}
	for _, o := range sc.Outputs {
		v, err := wfCtx.GetVar(o.Name)
		if err != nil {
			continue
		}
		b, err := v.MarshalJSON()
		if err != nil {
			return fmt.Errorf("output %s: %w", o.Name, err)
		}
		res.Outputs[o.Name] = b
	}
	var list unstructured.UnstructuredList
	for _, gvk := range []string{"ConfigMapList", "SecretList"} {
		list.SetAPIVersion("v1")
		list.SetKind(gvk)
		if err := cli.List(ctx, &list, client.InNamespace("")); err != nil {
			return err
		}
		for _, it := range list.Items {
			res.Objects = append(res.Objects, it.Object)
		}
	}
	return json.NewEncoder(os.Stdout).Encode(res)
}
