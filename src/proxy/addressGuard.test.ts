import { describe, expect, it } from "vitest"
import { guardedLookup, PrivateAddressRefused, privateAddressKind, refuseLiteral } from "./addressGuard.js"

describe("privateAddressKind", () => {
  it.each([
    ["127.0.0.1", "loopback"],
    ["127.9.9.9", "loopback"],
    ["::1", "loopback"],
    ["::ffff:127.0.0.1", "loopback"],
    ["169.254.169.254", "link-local"],
    ["::ffff:169.254.169.254", "link-local"],
    ["fe80::1", "link-local"],
    ["fd00:ec2::254", "link-local"],
    ["0.0.0.0", "unspecified"],
    ["::", "unspecified"]
  ])("refuses %s (%s)", (address, kind) => {
    expect(privateAddressKind(address)).toBe(kind)
  })

  it.each(["93.184.216.34", "10.0.0.1", "192.168.1.1", "2606:4700::1111", "::ffff:8.8.8.8", "api.example.com"])(
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
