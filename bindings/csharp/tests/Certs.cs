// A CA and a server certificate for localhost / 127.0.0.1, made with the
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
