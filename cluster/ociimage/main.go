// Command ociimage packs static programs into a one-layer OCI image layout, reproducibly (sorted
// entries, fixed mtime, uid/gid 0), so the node's images are built here and never pulled.
//
//	ociimage -out DIR -tag 1 -entrypoint /pause /path/to/pause=/pause
package main

import (
	"archive/tar"
	"bytes"
	"compress/gzip"
	"crypto/sha256"
	"encoding/hex"
	"encoding/json"
	"flag"
	"fmt"
	"os"
	"path/filepath"
	"sort"
	"strings"
	"time"
)

type descriptor struct {
	MediaType   string            `json:"mediaType"`
	Digest      string            `json:"digest"`
	Size        int64             `json:"size"`
	Annotations map[string]string `json:"annotations,omitempty"`
}

func main() {
	out := flag.String("out", "", "OCI layout directory to write (replaced)")
	tag := flag.String("tag", "latest", "tag recorded as org.opencontainers.image.ref.name")
	entrypoint := flag.String("entrypoint", "", "path of the program the image runs")
	flag.Parse()
	if *out == "" || *entrypoint == "" || flag.NArg() == 0 {
		fmt.Fprintln(os.Stderr, "usage: ociimage -out DIR [-tag TAG] -entrypoint PATH SRC=DEST...")
		os.Exit(2)
	}
	if err := write(*out, *tag, *entrypoint, flag.Args()); err != nil {
		fmt.Fprintf(os.Stderr, "ociimage: %v\n", err)
		os.Exit(1)
	}
}

func write(out, tag, entrypoint string, files []string) error {
	layer, diffID, err := layerTar(files)
	if err != nil {
		return err
	}
	if err := os.RemoveAll(out); err != nil {
		return err
	}
	if err := os.MkdirAll(filepath.Join(out, "blobs", "sha256"), 0o755); err != nil {
		return err
	}
	layerDesc, err := putBlob(out, "application/vnd.oci.image.layer.v1.tar+gzip", layer)
	if err != nil {
		return err
	}
	config, _ := json.Marshal(map[string]any{
		"architecture": "amd64",
		"os":           "linux",
		"config":       map[string]any{"Entrypoint": []string{entrypoint}, "User": "65532:65532"},
		"rootfs":       map[string]any{"type": "layers", "diff_ids": []string{diffID}},
	})
	configDesc, err := putBlob(out, "application/vnd.oci.image.config.v1+json", config)
	if err != nil {
		return err
	}
	manifest, _ := json.Marshal(map[string]any{
		"schemaVersion": 2,
		"mediaType":     "application/vnd.oci.image.manifest.v1+json",
		"config":        configDesc,
		"layers":        []descriptor{layerDesc},
	})
	manifestDesc, err := putBlob(out, "application/vnd.oci.image.manifest.v1+json", manifest)
	if err != nil {
		return err
	}
	manifestDesc.Annotations = map[string]string{"org.opencontainers.image.ref.name": tag}
	index, _ := json.Marshal(map[string]any{"schemaVersion": 2, "manifests": []descriptor{manifestDesc}})
	if err := os.WriteFile(filepath.Join(out, "index.json"), index, 0o644); err != nil {
		return err
	}
	return os.WriteFile(filepath.Join(out, "oci-layout"), []byte(`{"imageLayoutVersion":"1.0.0"}`), 0o644)
}

// layerTar returns the gzipped layer and the digest of its uncompressed tar (the config's diff_id).
func layerTar(files []string) ([]byte, string, error) {
	sort.Strings(files)
	var raw bytes.Buffer
	tw := tar.NewWriter(&raw)
	for _, spec := range files {
		src, dest, ok := strings.Cut(spec, "=")
		if !ok || !strings.HasPrefix(dest, "/") {
			return nil, "", fmt.Errorf("%q is not SRC=/DEST", spec)
		}
		data, err := os.ReadFile(src)
		if err != nil {
			return nil, "", err
		}
		hdr := &tar.Header{Name: strings.TrimPrefix(dest, "/"), Mode: 0o755, Size: int64(len(data)),
			ModTime: time.Unix(0, 0), Typeflag: tar.TypeReg, Format: tar.FormatPAX}
		if err := tw.WriteHeader(hdr); err != nil {
			return nil, "", err
		}
		if _, err := tw.Write(data); err != nil {
			return nil, "", err
		}
	}
	if err := tw.Close(); err != nil {
		return nil, "", err
	}
	sum := sha256.Sum256(raw.Bytes())
	var gz bytes.Buffer
	zw := gzip.NewWriter(&gz)
	if _, err := zw.Write(raw.Bytes()); err != nil {
		return nil, "", err
	}
	if err := zw.Close(); err != nil {
		return nil, "", err
	}
	return gz.Bytes(), "sha256:" + hex.EncodeToString(sum[:]), nil
}

func putBlob(out, mediaType string, data []byte) (descriptor, error) {
	sum := sha256.Sum256(data)
	hexSum := hex.EncodeToString(sum[:])
	err := os.WriteFile(filepath.Join(out, "blobs", "sha256", hexSum), data, 0o644)
	return descriptor{MediaType: mediaType, Digest: "sha256:" + hexSum, Size: int64(len(data))}, err
}
