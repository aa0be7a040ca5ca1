/**
 * node-redis, behind a module of ours so ClusterRedis can load it lazily: a static named import
 * here gets the bundler's CommonJS interop right, where `import("redis")` in a bundle does not.
 * @module
 */
export { createClient } from "redis"
