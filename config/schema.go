package config

import (
	"encoding/json"
	"reflect"
	"strings"
	"time"

	"github.com/hl7broker/hl7broker/condition"
	"github.com/hl7broker/hl7broker/transforms"
)

// Schema returns a JSON Schema (draft 2020-12) of the config file, made
// from the Config types themselves: every key, its type, the allowed
// values of enumerated keys, and no others (additionalProperties false),
// so that editors complete and check hl7broker.yaml. docs/ keeps a copy.
func Schema() []byte {
	g := &schemaGen{defs: map[string]any{}}
	root := g.object(reflect.TypeOf(Config{}))
	root["$schema"] = "https://json-schema.org/draft/2020-12/schema"
	root["title"] = "hl7broker configuration"
	root["description"] = "One YAML file: listeners, routes, transforms, destinations. See docs/configuration.md and docs/routing.md."
	root["$defs"] = g.defs
	out, _ := json.MarshalIndent(root, "", "  ")
	return append(out, '\n')
}

type schemaGen struct{ defs map[string]any }

var durationType = reflect.TypeOf(time.Duration(0))

// durationSchema: Go durations as YAML writes them (90s, 2m, 168h).
var durationSchema = map[string]any{"type": "string", "pattern": `^([0-9]+(\.[0-9]+)?(ns|us|µs|ms|s|m|h))+$`,
	"description": "a duration such as 500ms, 30s, 2m or 168h"}

func (g *schemaGen) schema(t reflect.Type, enum string) map[string]any {
	if t == durationType {
		return durationSchema
	}
	switch t.Kind() {
	case reflect.Pointer:
		return g.schema(t.Elem(), enum)
	case reflect.String:
		s := map[string]any{"type": "string"}
		if enum == destinationTypesEnum {
			s["enum"] = DestinationTypes()
		} else if enum == sourceTypesEnum {
			s["enum"] = SourceTypes()
		} else if enum != "" {
			s["enum"] = strings.Split(enum, ",")
		}
		return s
	case reflect.Bool:
		return map[string]any{"type": "boolean"}
	case reflect.Int, reflect.Int64:
		return map[string]any{"type": "integer"}
	case reflect.Float64:
		return map[string]any{"type": "number"}
	case reflect.Slice:
		items := g.schema(t.Elem(), enum)
		if t.Elem().Kind() == reflect.String {
			// One value may stand for a list of one (type: ADT).
			return map[string]any{"anyOf": []any{items, map[string]any{"type": "array", "items": items}}}
		}
		return map[string]any{"type": "array", "items": items}
	case reflect.Map:
		return map[string]any{"type": "object", "additionalProperties": g.schema(t.Elem(), "")}
	case reflect.Struct:
		name := t.Name()
		if t == reflect.TypeFor[transforms.Spec]() {
			if _, done := g.defs[name]; !done {
				g.defs[name] = nil // a placeholder first: a step's where refers to When
				g.defs[name] = g.step()
			}
			return map[string]any{"$ref": "#/$defs/" + name}
		}
		if t == reflect.TypeFor[SearchKey]() { // its path alone, or {path, fold}
			return map[string]any{"anyOf": []any{map[string]any{"type": "string"}, g.object(t)}}
		}
		if t == reflect.TypeFor[DestinationConfig]() || t == reflect.TypeFor[SourceConfig]() {
			if _, done := g.defs[name]; !done {
				g.defs[name] = g.typed(t)
			}
			return map[string]any{"$ref": "#/$defs/" + name}
		}
		if _, done := g.defs[name]; !done {
			g.defs[name] = nil // a placeholder first: When refers to itself
			g.defs[name] = g.object(t)
		}
		return map[string]any{"$ref": "#/$defs/" + name}
	}
	return map[string]any{}
}

// object describes a struct's mapstructure keys.
func (g *schemaGen) object(t reflect.Type) map[string]any {
	return map[string]any{"type": "object", "properties": g.properties(t, map[string]any{}), "additionalProperties": false}
}

// properties adds a struct's keys to props (a squashed struct's as its
// own).
func (g *schemaGen) properties(t reflect.Type, props map[string]any) map[string]any {
	for i := range t.NumField() {
		f := t.Field(i)
		key, opts, _ := strings.Cut(f.Tag.Get("mapstructure"), ",")
		switch {
		case !f.IsExported() || key == "-":
		case opts == "squash":
			g.properties(f.Type, props)
		case key != "":
			props[key] = g.schema(f.Type, f.Tag.Get("enum"))
		}
	}
	return props
}

// step describes a transform step: one of the registered operations,
// each with its own keys and no others.
func (g *schemaGen) step() map[string]any {
	var branches []any
	for _, name := range transforms.StepTypes() {
		props := g.properties(transforms.StepOptions(name), map[string]any{})
		props["when"] = g.schema(reflect.TypeFor[condition.When](), "") // any step may have its own
		branches = append(branches, map[string]any{"type": "object", "required": []string{name},
			"properties": props, "additionalProperties": false})
	}
	return map[string]any{"oneOf": branches}
}

// typed describes a destination or a source: the common keys, and for
// each registered type (if type is it) those and its own, no others.
func (g *schemaGen) typed(common reflect.Type) map[string]any {
	names, options := DestinationTypes(), func(name string) reflect.Type { t, _ := LookupDestinationType(name); return t.Options }
	if common == reflect.TypeFor[SourceConfig]() {
		names, options = SourceTypes(), func(name string) reflect.Type { t, _ := LookupSourceType(name); return t.Options }
	}
	var branches []any
	for _, name := range names {
		props := g.properties(options(name), g.properties(common, map[string]any{}))
		branches = append(branches, map[string]any{
			"if":   map[string]any{"properties": map[string]any{"type": map[string]any{"const": name}}, "required": []string{"type"}},
			"then": map[string]any{"properties": props, "additionalProperties": false},
		})
	}
	return map[string]any{"type": "object", "properties": g.properties(common, map[string]any{}), "required": []string{"name", "type"}, "allOf": branches}
}

// destinationTypesEnum, as a field's enum tag, stands for the registered
// destination types.
const destinationTypesEnum = "(registered destination types)"

// sourceTypesEnum stands for the registered source types.
const sourceTypesEnum = "(registered source types)"
