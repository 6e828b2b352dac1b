package api

import (
	"embed"
	"encoding/json"
	"fmt"
	"io/fs"
	"net/http"
	"sort"
	"sync"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"
)

// openAPIFiles describe the API in YAML, one file per domain (00_base.yaml holds the frame
// and shared components). They are merged and served as one JSON document.
//
//go:embed openapi/*.yaml
var openAPIFiles embed.FS

// OpenAPIDocument returns the merged OpenAPI 3 document as JSON.
var OpenAPIDocument = sync.OnceValues(func() ([]byte, error) {
	names, err := fs.Glob(openAPIFiles, "openapi/*.yaml")
	if err != nil {
		return nil, err
	}
	sort.Strings(names)
	var doc map[string]any
	for _, name := range names {
		raw, err := openAPIFiles.ReadFile(name)
		if err != nil {
			return nil, err
		}
		var part map[string]any
		if err := yaml.Unmarshal(raw, &part); err != nil {
			return nil, fmt.Errorf("%s: %w", name, err)
		}
		if doc == nil {
			doc = part
			continue
		}
		if err := mergeSection(doc, part, name, "paths"); err != nil {
			return nil, err
		}
		comps, _ := part["components"].(map[string]any)
		for kind := range comps {
			docComps := ensureMap(doc, "components")
			if err := mergeSection(docComps, comps, name, kind); err != nil {
				return nil, err
			}
		}
		for key := range part {
			if key != "paths" && key != "components" {
				return nil, fmt.Errorf("%s: only paths and components may be added, not %s", name, key)
			}
		}
	}
	return json.Marshal(doc)
})

// mergeSection adds part[key]'s entries to doc[key], refusing a name defined twice.
func mergeSection(doc, part map[string]any, file, key string) error {
	add, _ := part[key].(map[string]any)
	if len(add) == 0 {
		return nil
	}
	into := ensureMap(doc, key)
	for name, v := range add {
		if _, dup := into[name]; dup {
			return fmt.Errorf("%s: %s %s is defined twice", file, key, name)
		}
		into[name] = v
	}
	return nil
}

func ensureMap(m map[string]any, key string) map[string]any {
	v, ok := m[key].(map[string]any)
	if !ok {
		v = map[string]any{}
		m[key] = v
	}
	return v
}

func serveOpenAPI(c *gin.Context) {
	doc, err := OpenAPIDocument()
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "the API description is broken")
		return
	}
	c.Data(http.StatusOK, "application/json", doc)
}
