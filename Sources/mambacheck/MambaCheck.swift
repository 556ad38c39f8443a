import ArgumentParser

@main
struct MambaCheck: ParsableCommand {
    static let configuration = CommandConfiguration(commandName: "mambacheck", abstract: "Numerical verification for the linear-attention family.")
}
