// Command webhook is the acceptance tests' admission webhook: a TLS server on :8443 whose /mutate
// labels every object it admits with sparrow-mesh.io/mutated-by=<pod name>, so a test can prove
// the API server called it through its Service.
package main

import (
	"encoding/json"
	"log"
	"net/http"
	"os"
	"strings"
)

// review is the part of an admission.k8s.io/v1 AdmissionReview the webhook reads and writes.
type review struct {
	APIVersion string          `json:"apiVersion"`
	Kind       string          `json:"kind"`
	Request    *request        `json:"request,omitempty"`
	Response   *map[string]any `json:"response,omitempty"`
}

type request struct {
	UID    string `json:"uid"`
	Object struct {
		Metadata struct {
			Labels map[string]string `json:"labels"`
		} `json:"metadata"`
	} `json:"object"`
}

const label = "sparrow-mesh.io~1mutated-by"

func main() {
	certDir := "/tls"
	if len(os.Args) > 1 {
		certDir = os.Args[1]
	}
	who, _ := os.Hostname()
	http.HandleFunc("/mutate", func(w http.ResponseWriter, r *http.Request) {
		var in review
		if err := json.NewDecoder(r.Body).Decode(&in); err != nil || in.Request == nil {
			http.Error(w, "expected an AdmissionReview with a request", http.StatusBadRequest)
			return
		}
		patch := []map[string]any{{"op": "add", "path": "/metadata/labels/" + label, "value": who}}
		if in.Request.Object.Metadata.Labels == nil {
			key := strings.ReplaceAll(label, "~1", "/")
			patch = []map[string]any{{"op": "add", "path": "/metadata/labels", "value": map[string]string{key: who}}}
		}
		body, _ := json.Marshal(patch)
		resp := map[string]any{"uid": in.Request.UID, "allowed": true, "patchType": "JSONPatch", "patch": body}
		w.Header().Set("Content-Type", "application/json")
		_ = json.NewEncoder(w).Encode(review{APIVersion: "admission.k8s.io/v1", Kind: "AdmissionReview", Response: &resp})
	})
	log.Printf("webhook: serving /mutate on :8443 with %s/tls.crt", certDir)
	log.Fatal(http.ListenAndServeTLS(":8443", certDir+"/tls.crt", certDir+"/tls.key", nil))
}
