// Command shop is the quickstart's application, one static program in two images. Run as
// shop-server it answers every HTTP request on :8080 with its pod's name; run as shop-client it
// calls SHOP_URL (default: the shop Service's address from the variables the kubelet sets) once a
// second and logs each answer, so `kubectl logs` shows whether the call went through.
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strings"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	switch name := filepath.Base(os.Args[0]); name {
	case "shop-server":
		serve()
	case "shop-client":
		call(target())
	default:
		fmt.Fprintf(os.Stderr, "shop: run as shop-server or shop-client, not %s\n", name)
		os.Exit(2)
	}
}

func serve() {
	host, _ := os.Hostname()
	http.HandleFunc("/", func(w http.ResponseWriter, r *http.Request) {
		fmt.Fprintf(w, "hello from %s\n", host)
	})
	log.Printf("shop-server %s listening on :8080", host)
	log.Fatal(http.ListenAndServe(":8080", nil))
}

// target is SHOP_URL, or the Service named shop in the pod's namespace (the kubelet exports
// SHOP_SERVICE_HOST and SHOP_SERVICE_PORT for Services that exist when the pod starts).
func target() string {
	if url := os.Getenv("SHOP_URL"); url != "" {
		return url
	}
	host, port := os.Getenv("SHOP_SERVICE_HOST"), os.Getenv("SHOP_SERVICE_PORT")
	if host == "" || port == "" {
		log.Fatal("shop-client: no SHOP_URL and no shop Service (SHOP_SERVICE_HOST/PORT unset)")
	}
	return "http://" + host + ":" + port + "/"
}

func call(url string) {
	client := &http.Client{Timeout: 5 * time.Second}
	for {
		resp, err := client.Get(url)
		if err != nil {
			log.Printf("call %s: error: %v", url, err)
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			log.Printf("call %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		time.Sleep(time.Second)
	}
}
