// Command shop is the quickstart's application, one static program in two images. Run as
// shop-server it answers every HTTP request on :8080 with its pod's name; run as shop-client it
// calls SHOP_URL (default: the shop Service's address from the variables the kubelet sets) once a
// second and logs each answer, so `kubectl logs` shows whether the call went through. With
// SHOP_CALLS=N the client makes N calls and exits: 0 when the last one was answered 200, else 1
// (a Job's shape).
package main

import (
	"fmt"
	"io"
	"log"
	"net/http"
	"os"
	"path/filepath"
	"strconv"
	"strings"
	"time"
)

func main() {
	log.SetFlags(log.LstdFlags | log.LUTC)
	switch name := filepath.Base(os.Args[0]); name {
	case "shop-server":
		serve()
	case "shop-client":
		calls, err := callCount()
		if err != nil {
			log.Fatal(err)
		}
		os.Exit(call(target(), calls))
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

// callCount is SHOP_CALLS, or 0 (call for ever) when it is unset.
func callCount() (int, error) {
	text := os.Getenv("SHOP_CALLS")
	if text == "" {
		return 0, nil
	}
	n, err := strconv.Atoi(text)
	if err != nil || n < 1 {
		return 0, fmt.Errorf("shop-client: SHOP_CALLS=%q is not a positive number", text)
	}
	return n, nil
}

// call calls url once a second, calls times (for ever when 0), and returns the exit code: 0
// when the last call was answered 200.
func call(url string, calls int) int {
	client := &http.Client{Timeout: 5 * time.Second}
	for n := 1; ; n++ {
		ok := false
		resp, err := client.Get(url)
		if err != nil {
			log.Printf("call %s: error: %v", url, err)
		} else {
			body, _ := io.ReadAll(io.LimitReader(resp.Body, 1024))
			resp.Body.Close()
			ok = resp.StatusCode == http.StatusOK
			log.Printf("call %s: %d %s", url, resp.StatusCode, strings.TrimSpace(string(body)))
		}
		if calls > 0 && n >= calls {
			if ok {
				return 0
			}
			return 1
		}
		time.Sleep(time.Second)
	}
}
