# shellcheck shell=bash
# The node's certificates and kubeconfigs: one CA the script makes, a serving certificate for the API
# server and one for the registry, a client certificate per component. Sourced by local-cluster.sh.
# Needs: PKI, KUBE, NODE_NAME, NODE_IP, API_PORT, SERVICE_IP, ECR_REGISTRY.

pki_key() {
  openssl ecparam -name prime256v1 -genkey -noout -out "$PKI/$1.key" 2>/dev/null
  chmod 600 "$PKI/$1.key"
}

# pki_cert NAME SUBJECT EXTENSIONS: a certificate signed by the node CA.
pki_cert() {
  pki_key "$1"
  openssl req -new -key "$PKI/$1.key" -subj "$2" 2>/dev/null |
    openssl x509 -req -CA "$PKI/ca.crt" -CAkey "$PKI/ca.key" -set_serial "0x$(openssl rand -hex 16)" \
      -days 365 -out "$PKI/$1.crt" -extfile <(printf '%s\n' "$3") 2>/dev/null
}

pki_make() {
  mkdir -p "$PKI"
  pki_key ca
  openssl req -x509 -new -key "$PKI/ca.key" -subj "/CN=sparrow-node-ca" -days 365 -out "$PKI/ca.crt" \
    -addext "basicConstraints=critical,CA:TRUE" -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  local server="keyUsage=critical,digitalSignature
extendedKeyUsage=serverAuth"
  local client="keyUsage=critical,digitalSignature
extendedKeyUsage=clientAuth"
  pki_cert apiserver "/CN=kube-apiserver" "$server
subjectAltName=IP:127.0.0.1,IP:$NODE_IP,IP:$SERVICE_IP,DNS:localhost,DNS:kubernetes,DNS:kubernetes.default,DNS:kubernetes.default.svc,DNS:kubernetes.default.svc.cluster.local"
  pki_cert registry "/CN=sparrow-node-registry" "$server
subjectAltName=IP:127.0.0.1,DNS:localhost,DNS:$ECR_REGISTRY"
  pki_cert admin "/O=system:masters/CN=sparrow-node-admin" "$client"
  pki_cert apiserver-kubelet-client "/O=system:masters/CN=kube-apiserver-kubelet-client" "$client"
  pki_cert kube-controller-manager "/CN=system:kube-controller-manager" "$client"
  pki_cert kube-scheduler "/CN=system:kube-scheduler" "$client"
  pki_cert kubelet "/O=system:nodes/CN=system:node:$NODE_NAME" "$client"
  pki_cert kube-proxy "/CN=system:kube-proxy" "$client"
  pki_key service-account
  openssl ec -in "$PKI/service-account.key" -pubout -out "$PKI/service-account.pub" 2>/dev/null
  pki_webhook_client
}

# The client certificate the API server presents to admission webhooks that ask for one (the mesh with
# deploy --webhook-client-ca $PKI/webhook-client-ca.crt), from a CA of its own: trusting that CA lets in
# the API server and nothing else the node CA signs.
pki_webhook_client() {
  pki_key webhook-client-ca
  openssl req -x509 -new -key "$PKI/webhook-client-ca.key" -subj "/CN=sparrow-node-webhook-client-ca" -days 365 \
    -out "$PKI/webhook-client-ca.crt" -addext "basicConstraints=critical,CA:TRUE" \
    -addext "keyUsage=critical,keyCertSign,cRLSign" 2>/dev/null
  pki_key webhook-client
  openssl req -new -key "$PKI/webhook-client.key" -subj "/CN=kube-apiserver-webhook-client" 2>/dev/null |
    openssl x509 -req -CA "$PKI/webhook-client-ca.crt" -CAkey "$PKI/webhook-client-ca.key" \
      -set_serial "0x$(openssl rand -hex 16)" -days 365 -out "$PKI/webhook-client.crt" \
      -extfile <(printf 'keyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n') 2>/dev/null
}

# admission_config_make: the API server's --admission-control-config-file. Its kubeconfig presents the
# webhook client certificate to every Service webhook on port 443 (`*.svc`), harmless for webhooks that
# do not ask for one; the shape `sparrowctl webhook-auth` writes for one mesh.
admission_config_make() {
  mkdir -p "$KUBE"
  cat >"$KUBE/webhook-admission.kubeconfig" <<EOF
apiVersion: v1
kind: Config
users:
- name: "*.svc"
  user:
    client-certificate: $PKI/webhook-client.crt
    client-key: $PKI/webhook-client.key
EOF
  chmod 600 "$KUBE/webhook-admission.kubeconfig"
  cat >"$KUBE/admission-config.yaml" <<EOF
apiVersion: apiserver.config.k8s.io/v1
kind: AdmissionConfiguration
plugins:
- name: MutatingAdmissionWebhook
  configuration:
    apiVersion: apiserver.config.k8s.io/v1
    kind: WebhookAdmissionConfiguration
    kubeConfigFile: $KUBE/webhook-admission.kubeconfig
EOF
}

# kubeconfig_make NAME: a kubeconfig for the client certificate NAME, with the data inlined, so that
# every client (kubectl, kube-rs, the components) reads it the same way.
kubeconfig_make() {
  mkdir -p "$KUBE"
  cat >"$KUBE/$1.kubeconfig" <<EOF
apiVersion: v1
kind: Config
clusters:
- name: sparrow-node
  cluster:
    server: https://127.0.0.1:$API_PORT
    certificate-authority-data: $(base64 -w0 "$PKI/ca.crt")
users:
- name: $1
  user:
    client-certificate-data: $(base64 -w0 "$PKI/$1.crt")
    client-key-data: $(base64 -w0 "$PKI/$1.key")
contexts:
- name: sparrow-node
  context:
    cluster: sparrow-node
    user: $1
current-context: sparrow-node
EOF
  chmod 600 "$KUBE/$1.kubeconfig"
}
