import { describe, expect, it } from "vitest"
import { connectHostname, guardedLookup, PrivateAddressRefused, privateAddressKind, refuseLiteral } from "./addressGuard.js"

describe("privateAddressKind", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.9.9.9", "loopback"],
    ["::1", "loopback"],
    ["0:0:0:0:0:0:0:1", "loopback"],
    ["::ffff:127.0.0.1", "IPv4-mapped loopback"],
    // As the URL parser writes `[::ffff:127.0.0.1]`.
    ["::ffff:7f00:1", "IPv4-mapped loopback"],
    ["0:0:0:0:0:FFFF:7F00:0001", "IPv4-mapped loopback"],
    ["169.254.169.254", "link-local"],
    ["::ffff:169.254.169.254", "IPv4-mapped link-local"],
    ["::ffff:a9fe:a9fe", "IPv4-mapped link-local"],
    ["fe80::1", "link-local"],
    ["febf::1", "link-local"],
    ["fd00:ec2::254", "cloud metadata"],
    ["0.0.0.0", "unspecified"],
    ["0.1.2.3", "unspecified"],
    ["::", "unspecified"],
    ["::ffff:0:0", "IPv4-mapped unspecified"],
    ["::ffff:0.0.0.0", "IPv4-mapped unspecified"]
  ])("refuses %s (%s)", (address, kind) => {
    expect(privateAddressKind(address)).toBe(kind)
  })

  it.each(["93.184.216.34", "10.0.0.1", "192.168.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "::ffff:808:808", "fd00::1", "api.example.com"])(
    "allows %s",
    (address) => {
      expect(privateAddressKind(address)).toBeUndefined()
    }
  )
})

describe("refuseLiteral", () => {
  it("refuses IP literals Node would connect to without a lookup", () => {
    expect(refuseLiteral("169.254.169.254")).toBeInstanceOf(PrivateAddressRefused)
    expect(refuseLiteral("example.com")).toBeUndefined()
  })

  it("names IPv4-mapped loopback as such in the URL parser's spelling", () => {
    const hostname = connectHostname(new URL("http://[::ffff:127.0.0.1]:8080/"))
    expect(hostname).toBe("::ffff:7f00:1")
    expect(refuseLiteral(hostname)?.message).toBe(
      "::ffff:7f00:1 resolves to ::ffff:7f00:1 (IPv4-mapped loopback); HTTP connectors may not reach IPv4-mapped loopback addresses unless allowPrivate: true"
    )
  })
})

describe("guardedLookup", () => {
  const run = (hostname: string, all: boolean) =>
    new Promise<unknown>((resolve, reject) =>
      guardedLookup(hostname, { all }, (error: unknown, address: unknown) => (error ? reject(error) : resolve(address)))
    )

  it("fails a name that resolves to loopback, with the address in the message", async () => {
    const error = await run("localhost", true).catch((e: unknown) => e)
    expect(error).toBeInstanceOf(PrivateAddressRefused)
    expect(String((error as Error).message)).toMatch(/localhost resolves to (127\.0\.0\.1|::1)/)
    expect(await run("localhost", false).catch((e: unknown) => e)).toBeInstanceOf(PrivateAddressRefused)
  })

  it("passes through DNS errors", async () => {
    const error = await run("no-such-host.invalid", false).catch((e: unknown) => e) as NodeJS.ErrnoException
    expect(error).not.toBeInstanceOf(PrivateAddressRefused)
    expect(["ENOTFOUND", "EAI_AGAIN"]).toContain(error.code)
  })
})
