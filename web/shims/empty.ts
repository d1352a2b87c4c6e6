// Stand-in for Node-only modules (`ws`) that browser bundles import but never call.
export default {};
