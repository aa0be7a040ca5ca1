/** Aperture's version, as reported to peers (serverInfo / clientInfo). */
export const version = "0.1.0"
