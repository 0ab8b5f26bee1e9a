// A private mosquitto per test: a free loopback port, its own config, log
// and temp dir (the configuration of tests/common/mod.rs).
using System;
using System.Diagnostics;
using System.IO;
using System.Net;
using System.Net.Sockets;
using System.Threading;

namespace Mqtt5c.Tests
{
    sealed class Broker : IDisposable
    {
        public readonly int Port;
        public readonly string Dir;
        readonly string confPath;
        Process process;

        public string Url { get { return "mqtt://127.0.0.1:" + Port; } }

        public static int FreePort()
        {
            var l = new TcpListener(IPAddress.Loopback, 0);
            l.Start();
            int port = ((IPEndPoint)l.LocalEndpoint).Port;
            l.Stop();
            return port;
        }

        static string MosquittoPath()
        {
            var env = Environment.GetEnvironmentVariable("MOSQUITTO");
            if (!string.IsNullOrEmpty(env)) return env;
            foreach (var dir in (Environment.GetEnvironmentVariable("PATH") ?? "").Split(':'))
                if (dir.Length > 0 && File.Exists(Path.Combine(dir, "mosquitto"))) return Path.Combine(dir, "mosquitto");
            return "/usr/sbin/mosquitto";
        }

        /// <summary>extraConf is appended to the config; listenerConf, when
        /// given, replaces the plain listener line (for TLS).</summary>
        public Broker(string extraConf = "", Func<int, string> listenerConf = null)
        {
            Dir = Path.Combine(Path.GetTempPath(), "mqtt5c-cs-" + Guid.NewGuid().ToString("N"));
            Directory.CreateDirectory(Dir);
            Port = FreePort();
            confPath = Path.Combine(Dir, "mosquitto.conf");
            string listener = listenerConf != null ? listenerConf(Port) : "listener " + Port + " 127.0.0.1\nallow_anonymous true\n";
            File.WriteAllText(confPath,
                "# written by bindings/csharp/tests/Broker.cs\n" + listener +
                "persistence false\n" +
                "user root\n" +
                "log_dest file " + Path.Combine(Dir, "mosquitto.log") + "\n" +
                "log_type all\n" +
                extraConf + "\n");
            Start();
        }

        public void Start()
        {
            var psi = new ProcessStartInfo(MosquittoPath(), "-c " + confPath)
            {
                UseShellExecute = false,
                RedirectStandardError = true,
                RedirectStandardOutput = true,
            };
            process = Process.Start(psi);
            process.ErrorDataReceived += (s, e) => { };
            process.OutputDataReceived += (s, e) => { };
            process.BeginErrorReadLine();
            process.BeginOutputReadLine();
            WaitAccepting(TimeSpan.FromSeconds(30));
        }

        /// <summary>Waits until the port accepts connections (the condition,
        /// with a short retry interval), or fails with the broker's log.</summary>
        void WaitAccepting(TimeSpan timeout)
        {
            var deadline = DateTime.UtcNow + timeout;
            while (true)
            {
                if (process.HasExited)
                    throw new Exception("mosquitto exited at start: " + Log());
                try
                {
                    using (var c = new TcpClient())
                    {
                        c.Connect(IPAddress.Loopback, Port);
                        return;
                    }
                }
                catch (SocketException)
                {
                    if (DateTime.UtcNow > deadline) throw new Exception("mosquitto did not accept on " + Port + ": " + Log());
                    Thread.Sleep(20);
                }
            }
        }

        public string Log()
        {
            var path = Path.Combine(Dir, "mosquitto.log");
            return File.Exists(path) ? File.ReadAllText(path) : "(no log)";
        }

        /// <summary>Kills the broker (no DISCONNECT to its clients).</summary>
        public void Stop()
        {
            if (process == null) return;
            try { if (!process.HasExited) process.Kill(); } catch (InvalidOperationException) { }
            process.WaitForExit();
            process.Dispose();
            process = null;
        }

        public void Dispose()
        {
            Stop();
            try { Directory.Delete(Dir, true); } catch (IOException) { }
        }
    }
}
