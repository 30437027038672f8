package transforms

import (
	"reflect"
	"slices"
	"sync"
)

// StepType is one kind of transform step whose keys are the struct T (its
// mapstructure tags, as a config file writes them). One of T's keys is
// Name itself: the operation, naming what the step works on (set:
// PID-5). A kind is one file: T, its Step, and a StepType registered by
// RegisterStep.
type StepType[T any] struct {
	Name string
	// Compile makes the step from its keys, adding a problem to c for
	// anything wrong (at a key relative to the step: "pattern"). A step
	// with problems is not used.
	Compile func(o *T, c *Compiler) Step
}

type stepType struct {
	options reflect.Type
	compile func(opts any, c *Compiler) Step
}

var (
	stepsMu   sync.RWMutex
	steps     = map[string]stepType{}
	stepOrder []string
)

// RegisterStep makes a kind of step known to Compile and to the config's
// JSON Schema. It panics if the name is taken, or if T has no key Name.
func RegisterStep[T any](t StepType[T]) {
	stepsMu.Lock()
	defer stepsMu.Unlock()
	if _, dup := steps[t.Name]; dup {
		panic("transforms: step " + t.Name + " registered twice")
	}
	if !slices.Contains(optionKeys(reflect.TypeFor[T]()), t.Name) {
		panic("transforms: step " + t.Name + "'s options have no key " + t.Name)
	}
	steps[t.Name] = stepType{options: reflect.TypeFor[T](), compile: func(opts any, c *Compiler) Step {
		o, ok := opts.(*T)
		if !ok {
			c.add(t.Name, "options of type %T are not those of %s", opts, t.Name)
			return nil
		}
		return t.Compile(o, c)
	}}
	stepOrder = append(stepOrder, t.Name)
}

// StepTypes are the operations registered, in the order they were.
func StepTypes() []string {
	stepsMu.RLock()
	defer stepsMu.RUnlock()
	return slices.Clone(stepOrder)
}

// StepOptions is the options struct of an operation (nil if unknown).
func StepOptions(name string) reflect.Type {
	t, _ := lookupStep(name)
	return t.options
}

func lookupStep(name string) (stepType, bool) {
	stepsMu.RLock()
	defer stepsMu.RUnlock()
	t, ok := steps[name]
	return t, ok
}

// optionKeys are a struct's top-level mapstructure keys.
func optionKeys(t reflect.Type) []string {
	var keys []string
	for i := range t.NumField() {
		tag := t.Field(i).Tag.Get("mapstructure")
		for j := range len(tag) {
			if tag[j] == ',' {
				tag = tag[:j]
				break
			}
		}
		keys = append(keys, tag)
	}
	return keys
}
