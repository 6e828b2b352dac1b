package api

import (
	_ "embed"
	"encoding/json"
	"fmt"
	"net/http"
	"sync"

	"github.com/gin-gonic/gin"
	"sigs.k8s.io/yaml"
)

// openAPISource is the API's description, written in YAML for people and served as JSON.
//
//go:embed openapi.yaml
var openAPISource []byte

// OpenAPIDocument returns the OpenAPI 3 document as JSON.
var OpenAPIDocument = sync.OnceValues(func() ([]byte, error) {
	doc, err := yaml.YAMLToJSON(openAPISource)
	if err != nil {
		return nil, fmt.Errorf("openapi.yaml: %w", err)
	}
	if !json.Valid(doc) {
		return nil, fmt.Errorf("openapi.yaml does not convert to JSON")
	}
	return doc, nil
})

func serveOpenAPI(c *gin.Context) {
	doc, err := OpenAPIDocument()
	if err != nil {
		fail(c, http.StatusInternalServerError, "internal", "the API description is broken")
		return
	}
	c.Data(http.StatusOK, "application/json", doc)
}
