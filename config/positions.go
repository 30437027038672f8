package config

import (
	"os"
	"strconv"
	"strings"

	"go.yaml.in/yaml/v3"
)

// positions finds where a key path such as routes[1].when.all[0].field
// stands in a YAML file, so that check can say line and column.
type positions struct{ root *yaml.Node }

// readPositions parses file; nil when it cannot (problems then have no
// position).
func readPositions(file string) *positions {
	data, err := os.ReadFile(file)
	if err != nil {
		return nil
	}
	var doc yaml.Node
	if yaml.Unmarshal(data, &doc) != nil || len(doc.Content) == 0 {
		return nil
	}
	return &positions{root: doc.Content[0]}
}

// find returns the line and column of key's node (of the key itself in a
// mapping), or of the nearest enclosing node written in the file: a
// default or missing key points at its parent.
func (p *positions) find(key string) (line, col int) {
	if p == nil {
		return 0, 0
	}
	n := p.root
	line, col = n.Line, n.Column
	for _, part := range splitKey(key) {
		next, at := child(n, part)
		if next == nil {
			return line, col
		}
		n = next
		line, col = at.Line, at.Column
	}
	return line, col
}

// node returns the node at key exactly, or nil.
func (p *positions) node(key string) *yaml.Node {
	if p == nil {
		return nil
	}
	n := p.root
	for _, part := range splitKey(key) {
		if n, _ = child(n, part); n == nil {
			return nil
		}
	}
	return n
}

// splitKey turns routes[1].when.all[0] into routes, [1], when, all, [0].
func splitKey(key string) []string {
	var parts []string
	for _, dotted := range strings.Split(key, ".") {
		for dotted != "" {
			i := strings.IndexByte(dotted, '[')
			if i < 0 {
				parts = append(parts, dotted)
				break
			}
			if i > 0 {
				parts = append(parts, dotted[:i])
			}
			j := strings.IndexByte(dotted, ']')
			if j < i {
				break
			}
			parts = append(parts, dotted[i:j+1])
			dotted = dotted[j+1:]
		}
	}
	return parts
}

// child finds part ("name" or "[3]") under n; at is the node to point at
// (a mapping's key node, a sequence's item).
func child(n *yaml.Node, part string) (next, at *yaml.Node) {
	if n.Kind == yaml.AliasNode {
		n = n.Alias
	}
	if strings.HasPrefix(part, "[") {
		i, err := strconv.Atoi(strings.Trim(part, "[]"))
		if n.Kind != yaml.SequenceNode || err != nil || i < 0 || i >= len(n.Content) {
			return nil, nil
		}
		return n.Content[i], n.Content[i]
	}
	if n.Kind != yaml.MappingNode {
		return nil, nil
	}
	for k := 0; k+1 < len(n.Content); k += 2 {
		if n.Content[k].Value == part {
			return n.Content[k+1], n.Content[k]
		}
	}
	return nil, nil
}

// mapping decodes the mapping at key (keys as written), or nil.
func (p *positions) mapping(key string) map[string]any {
	n := p.node(key)
	if n == nil || n.Kind != yaml.MappingNode {
		return nil
	}
	var m map[string]any
	if n.Decode(&m) != nil {
		return nil
	}
	return m
}
