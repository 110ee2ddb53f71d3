// Command httpecho is the acceptance tests' application image: an HTTP server on :8080 that
// answers every request with its own name and the pod's hostname.
package main

import (
	"fmt"
	"log"
	"net/http"
	"os"
)

func main() {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, _ *http.Request) {
		fmt.Fprintf(w, "httpecho %s\n", host)
	})
	log.Fatal(http.ListenAndServe(":8080", nil))
}
