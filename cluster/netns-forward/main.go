// Command netns-forward gives the host loopback access to services that live inside the node's
// network namespace: it listens on host addresses and opens each upstream connection from inside
// the namespace, so no private-range traffic ever leaves it.
//
//	netns-forward -netns /var/run/netns/sparrow-node 127.0.0.1:16443=127.0.0.1:16443 ...
package main

import (
	"flag"
	"fmt"
	"io"
	"log"
	"net"
	"os"
	"runtime"
	"strings"
	"sync"

	"golang.org/x/sys/unix"
)

func main() {
	nsPath := flag.String("netns", "", "path of the network namespace the upstream connections are opened in")
	flag.Usage = func() {
		fmt.Fprintln(os.Stderr, "usage: netns-forward -netns PATH LISTEN=UPSTREAM...")
		flag.PrintDefaults()
	}
	flag.Parse()
	if *nsPath == "" || flag.NArg() == 0 {
		flag.Usage()
		os.Exit(2)
	}
	var wg sync.WaitGroup
	for _, pair := range flag.Args() {
		listen, upstream, ok := strings.Cut(pair, "=")
		if !ok {
			log.Printf("netns-forward: %q is not LISTEN=UPSTREAM", pair)
			os.Exit(2)
		}
		l, err := net.Listen("tcp", listen)
		if err != nil {
			log.Printf("netns-forward: cannot listen on %s: %v", listen, err)
			os.Exit(1)
		}
		wg.Add(1)
		go func() {
			defer wg.Done()
			serve(l, *nsPath, upstream)
		}()
	}
	log.Printf("netns-forward: ready")
	wg.Wait()
}

func serve(l net.Listener, nsPath, upstream string) {
	for {
		conn, err := l.Accept()
		if err != nil {
			log.Printf("netns-forward: accept on %s: %v", l.Addr(), err)
			return
		}
		go forward(conn, nsPath, upstream)
	}
}

func forward(down net.Conn, nsPath, upstream string) {
	defer down.Close()
	up, err := dialInNamespace(nsPath, upstream)
	if err != nil {
		log.Printf("netns-forward: dial %s in %s: %v", upstream, nsPath, err)
		return
	}
	defer up.Close()
	done := make(chan struct{}, 2)
	pipe := func(dst, src net.Conn) {
		_, _ = io.Copy(dst, src)
		if tcp, ok := dst.(*net.TCPConn); ok {
			_ = tcp.CloseWrite()
		}
		done <- struct{}{}
	}
	go pipe(up, down)
	go pipe(down, up)
	<-done
	<-done
}

// dialInNamespace opens the connection on a thread that has entered the namespace. The thread stays
// locked and is discarded when the goroutine ends, so no other goroutine ever runs in the namespace.
func dialInNamespace(nsPath, addr string) (net.Conn, error) {
	type result struct {
		conn net.Conn
		err  error
	}
	out := make(chan result, 1)
	go func() {
		runtime.LockOSThread()
		ns, err := os.Open(nsPath)
		if err != nil {
			out <- result{nil, err}
			return
		}
		defer ns.Close()
		if err := unix.Setns(int(ns.Fd()), unix.CLONE_NEWNET); err != nil {
			out <- result{nil, fmt.Errorf("setns: %w", err)}
			return
		}
		conn, err := net.Dial("tcp", addr)
		out <- result{conn, err}
	}()
	r := <-out
	return r.conn, r.err
}
