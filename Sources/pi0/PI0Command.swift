// The `pi0` command line: run, inspect, demo, bench, serve, tokenize, prompt, download, write-random-checkpoint.
// Exit codes (docs/CLI.md): 0 success, 1 failure while working (bad file, checkpoint problem, inference
// error), 2 `inspect` found a checkpoint problem, 64 invalid arguments (reported with the subcommand's
// usage, before any weight is read), 130/143 interrupted by SIGINT/SIGTERM.
import ArgumentParser
import Foundation

/// The version `pi0 --version` prints.
let pi0Version = "0.5.0"

@main
struct PI0Command: AsyncParsableCommand {
    static let configuration = CommandConfiguration(
        commandName: "pi0",
        abstract: "π0 and π0.5 (pi0, pi05) vision-language-action policy inference in Swift.",
        discussion: "Exit codes: 0 success, 1 failure, 2 inspect found a checkpoint problem, 64 invalid arguments, "
            + "130 interrupted. Shell completion: pi0 --generate-completion-script bash|zsh|fish (docs/CLI.md).",
        version: pi0Version,
        subcommands: [DemoCommand.self, RunCommand.self, ServeCommand.self, InspectCommand.self, BenchCommand.self,
                      CUDACheckCommand.self, DownloadCommand.self, TokenizeCommand.self, PromptCommand.self, WriteRandomCheckpointCommand.self],
        defaultSubcommand: nil)

    /// Like ArgumentParser's `main`, but a `ValidationError` thrown while a subcommand runs (checks that need
    /// the files, e.g. a state of the wrong length) is reported with that subcommand's usage, not pi0's.
    static func main() async {
        let command: ParsableCommand
        do {
            command = try parseAsRoot()
        } catch {
            exit(withError: error)
        }
        if let g = command as? GlobalOptionsCommand { Console.level = g.global.level }
        do {
            // `serve` is the only async command.
            if let serve = command as? ServeCommand { try await serve.run() } else { var c = command; try c.run() }
        } catch let e as ValidationError {
            let type = Swift.type(of: command)
            let name = type.configuration.commandName ?? "\(type)"
            FileHandle.standardError.write("Error: \(e.message)\nUsage: " + usageString(for: type) + "\n"
                                           + "  See 'pi0 \(name) --help' for more information.\n")
            Foundation.exit(ExitCode.validationFailure.rawValue)
        } catch {
            exit(withError: error)
        }
    }
}

/// Errors are reported as one line naming what is wrong, with exit code 1.
struct CLIError: Error, CustomStringConvertible {
    let description: String
    init(_ d: String) { description = d }
}
