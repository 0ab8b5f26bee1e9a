// A CA, a server certificate for localhost / 127.0.0.1 and a client
// certificate, made with the
// openssl command line per test run (ECDSA P-256: quick to generate).
using System;
using System.Diagnostics;
using System.IO;

namespace Mqtt5c.Tests
{
    sealed class Certs : IDisposable
    {
        readonly string dir;
        public string Ca { get { return Path.Combine(dir, "ca.pem"); } }
        public string ServerCert { get { return Path.Combine(dir, "server.pem"); } }
        public string ServerKey { get { return Path.Combine(dir, "server.key"); } }
        public string ClientCert { get { return Path.Combine(dir, "client.pem"); } }
        public string ClientKey { get { return Path.Combine(dir, "client.key"); } }

        public Certs()
        {
            dir = Path.Combine(Path.GetTempPath(), "mqtt5c-cs-certs-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(dir);
            File.WriteAllText(Path.Combine(dir, "ext.cnf"),
                "subjectAltName=DNS:localhost,IP:127.0.0.1\nbasicConstraints=CA:FALSE\n" +
                "keyUsage=critical,digitalSignature\nextendedKeyUsage=serverAuth\n");
            const string ec = "-newkey ec -pkeyopt ec_paramgen_curve:prime256v1 -nodes";
            OpenSsl("req -x509 " + ec + " -keyout ca.key -out ca.pem -days 2 -subj /CN=mqtt5c-cs-test-ca " +
                    "-addext basicConstraints=critical,CA:TRUE -addext keyUsage=critical,keyCertSign,cRLSign");
            OpenSsl("req " + ec + " -keyout server.key -out server.csr -subj /CN=localhost");
            OpenSsl("x509 -req -in server.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out server.pem -days 2 -extfile ext.cnf");
            File.WriteAllText(Path.Combine(dir, "client.cnf"),
                "basicConstraints=CA:FALSE\nkeyUsage=critical,digitalSignature\nextendedKeyUsage=clientAuth\n");
            OpenSsl("req " + ec + " -keyout client.key -out client.csr -subj /CN=mqtt5c-cs-client");
            OpenSsl("x509 -req -in client.csr -CA ca.pem -CAkey ca.key -CAcreateserial -out client.pem -days 2 -extfile client.cnf");
        }

        void OpenSsl(string args)
        {
            var psi = new ProcessStartInfo("openssl", args)
            {
                UseShellExecute = false,
                WorkingDirectory = dir,
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            using (var p = Process.Start(psi))
            {
                string err = p.StandardError.ReadToEnd();
                p.StandardOutput.ReadToEnd();
                p.WaitForExit();
                if (p.ExitCode != 0) throw new Exception("openssl " + args + " failed: " + err);
            }
        }

        public void Dispose()
        {
            try { Directory.Delete(dir, true); } catch (IOException) { }
        }
    }
}
