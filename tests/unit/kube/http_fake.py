"""A scripted HTTP(S) server on 127.0.0.1 for the transport tests: each request takes the next
step of the script - (status, body[, headers]), "drop" (close without answering) or
("sleep", seconds) - and records (method, path, headers). TLS with a throw-away CA, optionally
requiring a client certificate signed by it."""
import datetime
import ipaddress
import json
import os
import socket
import ssl
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer


class Pki(object):
    """A CA, a server certificate for 127.0.0.1 and a client certificate, as PEM bytes and files."""

    def __init__(self, directory):
        from cryptography import x509
        from cryptography.hazmat.primitives import hashes, serialization
        from cryptography.hazmat.primitives.asymmetric import ec
        from cryptography.x509.oid import NameOID

        now = datetime.datetime.now(datetime.timezone.utc)

        def name(cn):
            return x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, cn)])

        def pem_key(key):
            return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                                     serialization.NoEncryption())

        ca_key = ec.generate_private_key(ec.SECP256R1())
        ca = (x509.CertificateBuilder().subject_name(name("test-ca")).issuer_name(name("test-ca"))
              .public_key(ca_key.public_key()).serial_number(x509.random_serial_number())
              .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
              .add_extension(x509.BasicConstraints(ca=True, path_length=None), critical=True)
              .sign(ca_key, hashes.SHA256()))

        def leaf(cn, usage, san=None):
            key = ec.generate_private_key(ec.SECP256R1())
            builder = (x509.CertificateBuilder().subject_name(name(cn)).issuer_name(ca.subject)
                       .public_key(key.public_key()).serial_number(x509.random_serial_number())
                       .not_valid_before(now - datetime.timedelta(hours=1)).not_valid_after(now + datetime.timedelta(days=1))
                       .add_extension(x509.ExtendedKeyUsage([usage]), critical=False))
            if san:
                builder = builder.add_extension(x509.SubjectAlternativeName(san), critical=False)
            return builder.sign(ca_key, hashes.SHA256()).public_bytes(serialization.Encoding.PEM), pem_key(key)

        self.ca = ca.public_bytes(serialization.Encoding.PEM)
        self.server_cert, self.server_key = leaf("server", x509.oid.ExtendedKeyUsageOID.SERVER_AUTH,
                                                 [x509.IPAddress(ipaddress.ip_address("127.0.0.1"))])
        self.client_cert, self.client_key = leaf("client", x509.oid.ExtendedKeyUsageOID.CLIENT_AUTH)
        self.files = {}
        for attr in ("ca", "server_cert", "server_key", "client_cert", "client_key"):
            path = os.path.join(directory, attr + ".pem")
            with open(path, "wb") as fh:
                fh.write(getattr(self, attr))
            self.files[attr] = path


class FakeApi(object):
    def __init__(self, script=None, pki=None, client_auth=False):
        self.script = list(script or [])
        self.default = (200, {"kind": "Status", "ok": True})
        self.requests = []
        outer = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, *args):
                pass

            def _serve(self):
                length = int(self.headers.get("Content-Length") or 0)
                body = self.rfile.read(length) if length else b""
                outer.requests.append((self.command, self.path, dict(self.headers), body))
                step = outer.script.pop(0) if outer.script else outer.default
                if step == "drop":
                    self.close_connection = True
                    self.connection.shutdown(socket.SHUT_RDWR)
                    return
                if isinstance(step, tuple) and step[0] == "sleep":
                    threading.Event().wait(step[1])
                    step = outer.default
                status, payload = step[0], step[1]
                headers = step[2] if len(step) > 2 else {}
                data = payload if isinstance(payload, bytes) else json.dumps(payload).encode()
                self.send_response(status)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(data)))
                for key, value in headers.items():
                    self.send_header(key, value)
                self.end_headers()
                self.wfile.write(data)

            do_GET = do_POST = do_PATCH = do_DELETE = do_PUT = _serve

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.httpd.daemon_threads = True
        self.httpd.handle_error = lambda request, address: None  # TLS handshakes the tests make fail
        self.scheme = "http"
        if pki is not None:
            ctx = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
            ctx.load_cert_chain(pki.files["server_cert"], pki.files["server_key"])
            if client_auth:
                ctx.verify_mode = ssl.CERT_REQUIRED
                ctx.load_verify_locations(pki.files["ca"])
            self.httpd.socket = ctx.wrap_socket(self.httpd.socket, server_side=True)
            self.scheme = "https"
        self.thread = threading.Thread(target=self.httpd.serve_forever, daemon=True)
        self.thread.start()

    @property
    def url(self):
        return "%s://127.0.0.1:%d" % (self.scheme, self.httpd.server_address[1])

    def close(self):
        self.httpd.shutdown()
        self.httpd.server_close()


def free_port():
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    port = sock.getsockname()[1]
    sock.close()
    return port
