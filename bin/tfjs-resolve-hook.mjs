// Node resolve hook (module.register) that lets plain Node load TensorFlow.js's ES modules.
// `@tensorflow/tfjs-core/dist/register_all_gradients` and its neighbours import relative paths
// without a file extension (`./gradients/Abs_grad`), one naming both a file and a folder
// (`./gradients`). Bundlers resolve those; Node's ESM resolver refuses them. Such an import inside
// `@tensorflow/*` is retried with `.js` appended; nothing else is touched.
export async function resolve(specifier, context, next) {
  try {
    return await next(specifier, context)
  } catch (error) {
    const parent = context.parentURL ?? ''
    if (specifier.startsWith('.') && !specifier.endsWith('.js') && parent.includes('/node_modules/@tensorflow/')) {
      return next(`${specifier}.js`, context)
    }
    throw error
  }
}
