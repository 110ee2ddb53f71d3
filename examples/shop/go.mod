// The quickstart's application: a tiny HTTP server and a client that calls it, built here and
// pushed to the private registry, so the story needs no image from the internet.
module sparrow-mesh.io/examples/shop

go 1.26
